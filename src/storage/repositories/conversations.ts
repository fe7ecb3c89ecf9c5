import type { Database } from '../db.js';
import { and, eq, isNull, sql } from '../orm.js';
import { conversations } from '../schema.js';

export type ConversationRow = typeof conversations.$inferSelect;

export interface ConversationWrite {
  readonly conversationId: string;
  readonly kind: string;
  readonly teamId?: string | null | undefined;
  readonly name?: string | null | undefined;
  readonly reference: Record<string, unknown>;
}

/** Conversation references for proactive posts (Teams), one per (tenant, platform, conversation). */
export class ConversationRepository {
  constructor(private readonly db: Database) {}

  /** Remembers (or refreshes) a conversation; a conversation seen again is no longer removed. */
  async remember(tenantId: string, platform: string, write: ConversationWrite): Promise<ConversationRow> {
    const values = {
      kind: write.kind,
      teamId: write.teamId ?? null,
      reference: write.reference,
      removedAt: null,
      updatedAt: sql`now()`,
      ...(write.name ? { name: write.name } : {}),
    };
    const [row] = await this.db
      .insert(conversations)
      .values({ tenantId, platform, conversationId: write.conversationId, ...values, updatedAt: new Date() })
      .onConflictDoUpdate({
        target: [conversations.tenantId, conversations.platform, conversations.conversationId],
        set: values,
      })
      .returning();
    return row!;
  }

  async find(
    tenantId: string,
    platform: string,
    conversationId: string,
  ): Promise<ConversationRow | undefined> {
    const [row] = await this.db
      .select()
      .from(conversations)
      .where(
        and(
          eq(conversations.tenantId, tenantId),
          eq(conversations.platform, platform),
          eq(conversations.conversationId, conversationId),
        ),
      );
    return row;
  }

  /** The bot was removed from a conversation (or a whole team: every channel of it). */
  async markRemoved(tenantId: string, platform: string, where: { conversationId?: string; teamId?: string }) {
    const conditions = [eq(conversations.tenantId, tenantId), eq(conversations.platform, platform)];
    if (where.conversationId) conditions.push(eq(conversations.conversationId, where.conversationId));
    if (where.teamId) conditions.push(eq(conversations.teamId, where.teamId));
    if (!where.conversationId && !where.teamId) return 0;
    const rows = await this.db
      .update(conversations)
      .set({ removedAt: new Date() })
      .where(and(...conditions, isNull(conversations.removedAt)))
      .returning({ id: conversations.id });
    return rows.length;
  }
}
