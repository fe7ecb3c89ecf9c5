import type { Database } from '../db.js';
import { and, desc, eq, getTableColumns, inArray, sql } from '../orm.js';
import { cards, recommendations, tickets } from '../schema.js';

export type RecommendationRow = typeof recommendations.$inferSelect;
export type CardRow = typeof cards.$inferSelect;
export type TicketRow = typeof tickets.$inferSelect;

export interface RecommendationInput {
  externalId: string;
  title: string;
  severity?: string | null;
  payload: Record<string, unknown>;
}

/** recordCardPosted's statement, prepared once per database (or transaction) it runs on. */
const recordCardPostedStatements = new WeakMap<
  Database,
  { execute(values: Record<string, unknown>): Promise<unknown> }
>();

/** Recommendations with the cards that show them and the tickets created for them. */
export class RecommendationRepository {
  constructor(private readonly db: Database) {}

  /** Insert or update by (tenant, external id); `created` tells a first delivery from a resend. */
  async upsert(
    tenantId: string,
    input: RecommendationInput,
  ): Promise<{ row: RecommendationRow; created: boolean }> {
    const values = { title: input.title, severity: input.severity ?? null, payload: input.payload };
    const [row] = await this.db
      .insert(recommendations)
      .values({ tenantId, externalId: input.externalId, ...values })
      .onConflictDoUpdate({
        target: [recommendations.tenantId, recommendations.externalId],
        set: { ...values, updatedAt: new Date() },
      })
      // xmax = 0 only for a freshly inserted row version.
      .returning({ ...getTableColumns(recommendations), created: sql<boolean>`(xmax = 0)` });
    const { created, ...rest } = row!;
    return { row: rest, created: Boolean(created) };
  }

  async findByExternalId(tenantId: string, externalId: string): Promise<RecommendationRow | undefined> {
    const [row] = await this.db
      .select()
      .from(recommendations)
      .where(and(eq(recommendations.tenantId, tenantId), eq(recommendations.externalId, externalId)));
    return row;
  }

  async findById(tenantId: string, id: string): Promise<RecommendationRow | undefined> {
    const [row] = await this.db
      .select()
      .from(recommendations)
      .where(and(eq(recommendations.tenantId, tenantId), eq(recommendations.id, id)));
    return row;
  }

  /** The tenant's recommendations among `externalIds` (one query for a whole ingest batch). */
  async findManyByExternalIds(
    tenantId: string,
    externalIds: readonly string[],
  ): Promise<RecommendationRow[]> {
    if (externalIds.length === 0) return [];
    // The ids as one jsonb parameter: an ingest request reads up to 500 of them, and a list of
    // 500 parameters costs the query builder and the driver more than the query itself.
    return this.db
      .select()
      .from(recommendations)
      .where(
        and(
          eq(recommendations.tenantId, tenantId),
          sql`${recommendations.externalId} in (select jsonb_array_elements_text(${JSON.stringify(externalIds)}::jsonb))`,
        ),
      );
  }

  /** Records a card for a channel once; a second call for the same channel returns the first. */
  async ensureCard(
    tenantId: string,
    recommendationId: string,
    platform: string,
    channelId: string,
  ): Promise<{ card: CardRow; created: boolean }> {
    const [inserted] = await this.db
      .insert(cards)
      .values({ tenantId, recommendationId, platform, channelId })
      .onConflictDoNothing({ target: [cards.recommendationId, cards.platform, cards.channelId] })
      .returning();
    if (inserted) return { card: inserted, created: true };
    const [existing] = await this.db
      .select()
      .from(cards)
      .where(
        and(
          eq(cards.tenantId, tenantId),
          eq(cards.recommendationId, recommendationId),
          eq(cards.platform, platform),
          eq(cards.channelId, channelId),
        ),
      );
    return { card: existing!, created: false };
  }

  async findManyByIds(tenantId: string, ids: readonly string[]): Promise<RecommendationRow[]> {
    if (ids.length === 0) return [];
    return this.db
      .select()
      .from(recommendations)
      .where(and(eq(recommendations.tenantId, tenantId), inArray(recommendations.id, [...ids])));
  }

  /** The cards of several recommendations. */
  async cardsOf(tenantId: string, recommendationIds: readonly string[]): Promise<CardRow[]> {
    if (recommendationIds.length === 0) return [];
    return this.db
      .select()
      .from(cards)
      .where(and(eq(cards.tenantId, tenantId), inArray(cards.recommendationId, [...recommendationIds])));
  }

  /** The tickets of several recommendations. */
  async ticketsOf(tenantId: string, recommendationIds: readonly string[]): Promise<TicketRow[]> {
    if (recommendationIds.length === 0) return [];
    return this.db
      .select()
      .from(tickets)
      .where(and(eq(tickets.tenantId, tenantId), inArray(tickets.recommendationId, [...recommendationIds])));
  }

  /**
   * A card was posted in the channel: records it with its message reference in one statement
   * (its row is created here unless an earlier attempt left one). The statement is built once per
   * database (a prepared query with placeholders): a fan-out runs it once per card, and building
   * it anew took the query builder about 0.2 ms each time.
   */
  async recordCardPosted(
    tenantId: string,
    recommendationId: string,
    platform: string,
    channelId: string,
    messageRef: string,
  ): Promise<void> {
    let statement = recordCardPostedStatements.get(this.db);
    if (!statement) {
      statement = this.db
        .insert(cards)
        .values({
          tenantId: sql.placeholder('tenantId'),
          recommendationId: sql.placeholder('recommendationId'),
          platform: sql.placeholder('platform'),
          channelId: sql.placeholder('channelId'),
          messageRef: sql.placeholder('messageRef'),
          state: 'posted',
        })
        .onConflictDoUpdate({
          target: [cards.recommendationId, cards.platform, cards.channelId],
          set: {
            messageRef: sql`excluded.${sql.identifier(cards.messageRef.name)}`,
            state: 'posted',
            updatedAt: sql`now()`,
          },
        })
        .prepare('cards_record_posted');
      recordCardPostedStatements.set(this.db, statement);
    }
    await statement.execute({ tenantId, recommendationId, platform, channelId, messageRef });
  }

  async markCardPosted(tenantId: string, cardId: string, messageRef: string): Promise<void> {
    await this.db
      .update(cards)
      .set({ messageRef, state: 'posted', updatedAt: new Date() })
      .where(and(eq(cards.tenantId, tenantId), eq(cards.id, cardId)));
  }

  /** Posting failed for good (the channel is gone, the bot was removed, the token revoked). */
  async markCardFailed(tenantId: string, cardId: string, reason: string): Promise<void> {
    await this.db
      .update(cards)
      .set({ state: 'failed', lastError: reason, updatedAt: new Date() })
      .where(and(eq(cards.tenantId, tenantId), eq(cards.id, cardId)));
  }

  /** The tenant's most recent cards that could not be delivered, newest first. */
  async failedCards(tenantId: string, limit = 5): Promise<(CardRow & { readonly title: string })[]> {
    return this.db
      .select({ ...getTableColumns(cards), title: recommendations.title })
      .from(cards)
      .innerJoin(recommendations, eq(recommendations.id, cards.recommendationId))
      .where(and(eq(cards.tenantId, tenantId), eq(cards.state, 'failed')))
      .orderBy(desc(cards.updatedAt))
      .limit(limit);
  }

  async cards(tenantId: string, recommendationId: string): Promise<CardRow[]> {
    return this.db
      .select()
      .from(cards)
      .where(and(eq(cards.tenantId, tenantId), eq(cards.recommendationId, recommendationId)));
  }

  /**
   * Claims the one ticket of (recommendation, provider). Exactly one caller gets `claimed: true`
   * and goes on to call the provider; every other caller gets the same row back.
   */
  async claimTicket(
    tenantId: string,
    recommendationId: string,
    provider: string,
    idempotencyKey: string,
    createdBy: string,
    /** Project / type chosen at the click (the channel's subscription); kept only by the claimer. */
    routing: Record<string, unknown> = {},
  ): Promise<{ ticket: TicketRow; claimed: boolean }> {
    const [inserted] = await this.db
      .insert(tickets)
      .values({ tenantId, recommendationId, provider, idempotencyKey, createdBy, routing })
      .onConflictDoNothing()
      .returning();
    if (inserted) return { ticket: inserted, claimed: true };
    const [existing] = await this.db
      .select()
      .from(tickets)
      .where(
        and(
          eq(tickets.tenantId, tenantId),
          eq(tickets.recommendationId, recommendationId),
          eq(tickets.provider, provider),
        ),
      );
    return { ticket: existing!, claimed: false };
  }

  async completeTicket(
    tenantId: string,
    ticketId: string,
    result: { key: string; url: string; status: string; providerStatus?: string | null },
  ): Promise<void> {
    await this.db
      .update(tickets)
      .set({
        ...result,
        providerStatus: result.providerStatus ?? null,
        lastError: null,
        updatedAt: new Date(),
      })
      .where(and(eq(tickets.tenantId, tenantId), eq(tickets.id, ticketId)));
  }

  async tickets(tenantId: string, recommendationId: string): Promise<TicketRow[]> {
    return this.db
      .select()
      .from(tickets)
      .where(and(eq(tickets.tenantId, tenantId), eq(tickets.recommendationId, recommendationId)));
  }
}
