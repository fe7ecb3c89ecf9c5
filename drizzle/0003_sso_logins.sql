CREATE TABLE "sso_logins" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" uuid NOT NULL,
	"platform" text NOT NULL,
	"chat_user_id" text NOT NULL,
	"token_hash" text NOT NULL,
	"state" text,
	"nonce" text,
	"verifier_secret" text,
	"browser_hash" text,
	"reply_to" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"started_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sso_logins" ADD CONSTRAINT "sso_logins_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "sso_logins_token_hash_uq" ON "sso_logins" USING btree ("token_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "sso_logins_state_uq" ON "sso_logins" USING btree ("state");--> statement-breakpoint
CREATE INDEX "sso_logins_tenant_idx" ON "sso_logins" USING btree ("tenant_id");