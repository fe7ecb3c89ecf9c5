import type { Database } from '../db.js';
import { and, asc, eq } from '../orm.js';
import { routes } from '../schema.js';

export type RouteRow = typeof routes.$inferSelect;
export type RouteInput = Omit<typeof routes.$inferInsert, 'id' | 'tenantId' | 'createdAt' | 'updatedAt'>;

/** Subscriptions: which recommendations go to which channel / recipients and ticket target. */
export class RouteRepository {
  constructor(private readonly db: Database) {}

  async create(tenantId: string, input: RouteInput): Promise<RouteRow> {
    const [row] = await this.db
      .insert(routes)
      .values({ ...input, tenantId })
      .returning();
    return row!;
  }

  async list(tenantId: string, filter: { platform?: string; channelId?: string } = {}): Promise<RouteRow[]> {
    const conditions = [eq(routes.tenantId, tenantId)];
    if (filter.platform) conditions.push(eq(routes.platform, filter.platform));
    if (filter.channelId) conditions.push(eq(routes.channelId, filter.channelId));
    return this.db
      .select()
      .from(routes)
      .where(and(...conditions))
      .orderBy(asc(routes.createdAt));
  }

  async remove(tenantId: string, id: string): Promise<boolean> {
    const rows = await this.db
      .delete(routes)
      .where(and(eq(routes.tenantId, tenantId), eq(routes.id, id)))
      .returning({ id: routes.id });
    return rows.length > 0;
  }
}
