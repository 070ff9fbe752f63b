-- CreateTable
CREATE TABLE "cif_idempotencykey" (
    "cif_idempotencykeyid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "keyhash" VARCHAR(64) NOT NULL,
    "requestevent" VARCHAR(36),
    "instanceid" VARCHAR(36) NOT NULL,
    "status" INTEGER,
    "headers" VARCHAR(8000),
    "body" VARCHAR(1048576),
    "bodybytes" INTEGER,
    "createdon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expireson" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "cif_idempotencykey_pkey" PRIMARY KEY ("cif_idempotencykeyid")
);

-- CreateIndex
CREATE INDEX "ix_cif_idempotencykey_expireson" ON "cif_idempotencykey"("expireson");

-- CreateIndex
CREATE UNIQUE INDEX "ak_cif_idempotencykey_natural_key" ON "cif_idempotencykey"("keyhash");

