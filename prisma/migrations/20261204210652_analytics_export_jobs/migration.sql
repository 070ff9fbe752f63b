-- AlterTable
ALTER TABLE "cif_analytics_dirty" ADD COLUMN     "createdon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- CreateTable
CREATE TABLE "cif_analytics_exportjob" (
    "cif_analytics_exportjobid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "kind" VARCHAR(40) NOT NULL,
    "query" VARCHAR(1048576) NOT NULL,
    "state" VARCHAR(20) NOT NULL,
    "submittedby" VARCHAR(100),
    "submittedon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedon" TIMESTAMPTZ(3),
    "completedon" TIMESTAMPTZ(3),
    "expireson" TIMESTAMPTZ(3),
    "errormessage" VARCHAR(2000),
    "rowsexpected" INTEGER,
    "rowswritten" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "cif_analytics_exportjob_pkey" PRIMARY KEY ("cif_analytics_exportjobid")
);

-- CreateTable
CREATE TABLE "cif_analytics_exportkey" (
    "cif_analytics_exportkeyid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "jobid" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "key" VARCHAR(100) NOT NULL,

    CONSTRAINT "cif_analytics_exportkey_pkey" PRIMARY KEY ("cif_analytics_exportkeyid")
);

-- CreateTable
CREATE TABLE "cif_analytics_exportresult" (
    "cif_analytics_exportresultid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "jobid" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "body" VARCHAR(1048576) NOT NULL,

    CONSTRAINT "cif_analytics_exportresult_pkey" PRIMARY KEY ("cif_analytics_exportresultid")
);

-- CreateIndex
CREATE INDEX "ix_cif_analytics_exportjob_expireson" ON "cif_analytics_exportjob"("expireson");

-- CreateIndex
CREATE UNIQUE INDEX "ak_cif_analytics_exportkey_natural_key" ON "cif_analytics_exportkey"("jobid", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "ak_cif_analytics_exportresult_natural_key" ON "cif_analytics_exportresult"("jobid", "seq");


-- Hand-written: where the export job tables live on a Citus cluster (src/model/distribution.ts).
SELECT cif_place_table('cif_analytics_exportjob', 'coordinator');
SELECT cif_place_table('cif_analytics_exportkey', 'coordinator');
SELECT cif_place_table('cif_analytics_exportresult', 'coordinator');
