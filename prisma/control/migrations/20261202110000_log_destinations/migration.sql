-- CreateTable
CREATE TABLE "log_destination" (
    "id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "resource_type" VARCHAR(40) NOT NULL,
    "settings" JSONB NOT NULL,
    "categories" TEXT[],
    "created_on" TIMESTAMPTZ(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "log_destination_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "log_cursor" (
    "destination_id" UUID NOT NULL,
    "category" VARCHAR(20) NOT NULL,
    "transaction_id" BIGINT NOT NULL,
    "version_number" BIGINT NOT NULL,
    "forwarded" BIGINT NOT NULL DEFAULT 0,
    "last_success_on" TIMESTAMPTZ(6),
    "failing_since" TIMESTAMPTZ(6),
    "last_error" VARCHAR(2000),

    CONSTRAINT "log_cursor_pkey" PRIMARY KEY ("destination_id","category")
);

-- CreateIndex
CREATE UNIQUE INDEX "log_destination_organization_id_name_key" ON "log_destination"("organization_id", "name");

-- AddForeignKey
ALTER TABLE "log_destination" ADD CONSTRAINT "log_destination_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "log_cursor" ADD CONSTRAINT "log_cursor_destination_id_fkey" FOREIGN KEY ("destination_id") REFERENCES "log_destination"("id") ON DELETE CASCADE ON UPDATE CASCADE;

