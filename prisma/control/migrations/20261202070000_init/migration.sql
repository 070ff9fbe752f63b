
-- CreateTable
CREATE TABLE "organization" (
    "id" UUID NOT NULL,
    "name" VARCHAR(63) NOT NULL,
    "url" VARCHAR(2048),
    "is_default" BOOLEAN NOT NULL DEFAULT false,
    "database_name" VARCHAR(63),
    "business_unit_id" UUID NOT NULL,
    "oidc_issuer" VARCHAR(2048),
    "oidc_audience" VARCHAR(2048),
    "oidc_jwks_url" VARCHAR(2048),
    "oidc_algorithms" TEXT[] DEFAULT ARRAY['RS256']::TEXT[],
    "created_on" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "organization_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "principal" (
    "id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "kind" VARCHAR(16) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "client_id" VARCHAR(200),
    "issuer" VARCHAR(2048),
    "object_id" VARCHAR(200),
    "roles" TEXT[],
    "provider_id" UUID,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "created_on" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "principal_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "client_secret" (
    "id" UUID NOT NULL,
    "principal_id" UUID NOT NULL,
    "hash" VARCHAR(300) NOT NULL,
    "hint" VARCHAR(8) NOT NULL,
    "created_on" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_on" TIMESTAMPTZ(6),

    CONSTRAINT "client_secret_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "signing_key" (
    "kid" VARCHAR(64) NOT NULL,
    "algorithm" VARCHAR(16) NOT NULL,
    "private_jwk" JSONB NOT NULL,
    "public_jwk" JSONB NOT NULL,
    "created_on" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retired_on" TIMESTAMPTZ(6),

    CONSTRAINT "signing_key_pkey" PRIMARY KEY ("kid")
);

-- CreateIndex
CREATE UNIQUE INDEX "organization_name_key" ON "organization"("name");

-- CreateIndex
CREATE UNIQUE INDEX "organization_url_key" ON "organization"("url");

-- CreateIndex
CREATE UNIQUE INDEX "principal_client_id_key" ON "principal"("client_id");

-- CreateIndex
CREATE UNIQUE INDEX "principal_organization_id_issuer_object_id_key" ON "principal"("organization_id", "issuer", "object_id");

-- CreateIndex
CREATE INDEX "client_secret_principal_id_idx" ON "client_secret"("principal_id");

-- AddForeignKey
ALTER TABLE "principal" ADD CONSTRAINT "principal_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "client_secret" ADD CONSTRAINT "client_secret_principal_id_fkey" FOREIGN KEY ("principal_id") REFERENCES "principal"("id") ON DELETE CASCADE ON UPDATE CASCADE;

