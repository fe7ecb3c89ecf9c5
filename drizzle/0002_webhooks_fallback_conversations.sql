CREATE TABLE "conversations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"platform" text NOT NULL,
	"conversation_id" text NOT NULL,
	"kind" text NOT NULL,
	"team_id" text,
	"name" text,
	"reference" jsonb NOT NULL,
	"removed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhook_endpoints" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"provider" text NOT NULL,
	"public_id" text NOT NULL,
	"signing_secret" text NOT NULL,
	"created_by" text,
	"last_received_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "cards" ADD COLUMN "fallback_state" text;--> statement-breakpoint
ALTER TABLE "cards" ADD COLUMN "fallback_note" text;--> statement-breakpoint
ALTER TABLE "tickets" ADD COLUMN "routing" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "conversations" ADD CONSTRAINT "conversations_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ADD CONSTRAINT "webhook_endpoints_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "conversations_tenant_platform_id_uq" ON "conversations" USING btree ("tenant_id","platform","conversation_id");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_endpoints_public_id_uq" ON "webhook_endpoints" USING btree ("public_id");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_endpoints_tenant_provider_uq" ON "webhook_endpoints" USING btree ("tenant_id","provider");--> statement-breakpoint
CREATE INDEX "tickets_tenant_provider_key_idx" ON "tickets" USING btree ("tenant_id","provider","key");