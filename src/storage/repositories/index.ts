import type { SecretBox } from '../../crypto/secret-box.js';
import type { Database } from '../db.js';
import { ApiKeyRepository } from './api-keys.js';
import { AuditLogRepository } from './audit-log.js';
import { ConversationRepository } from './conversations.js';
import { IdentityRepository } from './identities.js';
import { InstallationRepository } from './installations.js';
import { IntegrationRepository } from './integrations.js';
import { RecommendationRepository } from './recommendations.js';
import { RouteRepository } from './routes.js';
import { TenantRepository } from './tenants.js';
import { WebhookRepository } from './webhooks.js';

export interface Repositories {
  readonly tenants: TenantRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly audit: AuditLogRepository;
  readonly integrations: IntegrationRepository;
  readonly installations: InstallationRepository;
  readonly identities: IdentityRepository;
  readonly routes: RouteRepository;
  readonly recommendations: RecommendationRepository;
  readonly webhooks: WebhookRepository;
  readonly conversations: ConversationRepository;
}

/** The repositories over one database or transaction handle. */
export function createRepositories(db: Database, box: SecretBox): Repositories {
  return {
    tenants: new TenantRepository(db),
    apiKeys: new ApiKeyRepository(db),
    audit: new AuditLogRepository(db),
    integrations: new IntegrationRepository(db, box),
    installations: new InstallationRepository(db, box),
    identities: new IdentityRepository(db, box),
    routes: new RouteRepository(db),
    recommendations: new RecommendationRepository(db),
    webhooks: new WebhookRepository(db, box),
    conversations: new ConversationRepository(db),
  };
}
