-- CreateTable
CREATE TABLE "cif_analytics_agentversion" (
    "cif_analytics_agentversionid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "userid" VARCHAR(100) NOT NULL DEFAULT '',
    "version" BIGINT NOT NULL,

    CONSTRAINT "cif_analytics_agentversion_pkey" PRIMARY KEY ("cif_analytics_agentversionid")
);

-- CreateIndex
CREATE UNIQUE INDEX "ak_cif_analytics_agentversion_natural_key" ON "cif_analytics_agentversion"("userid");


-- Versions come from one sequence, so they only ever move forward, whichever server's refresher moves them.
CREATE SEQUENCE "cif_analytics_agentversion_seq";
SELECT cif_place_table('cif_analytics_agentversion', 'coordinator');
