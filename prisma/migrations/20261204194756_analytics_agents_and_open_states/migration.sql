-- CreateTable
CREATE TABLE "cif_analytics_agentevent" (
    "cif_analytics_agenteventid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "conversationid" VARCHAR(100) NOT NULL,
    "userid" VARCHAR(100) NOT NULL DEFAULT '',
    "eventon" TIMESTAMPTZ(3) NOT NULL,
    "createdon" TIMESTAMPTZ(3) NOT NULL,
    "kpieventid" VARCHAR(100) NOT NULL,
    "eventname" VARCHAR(100) NOT NULL DEFAULT '',
    "reason" VARCHAR(400),
    "providersessionid" VARCHAR(100) NOT NULL DEFAULT '',
    "cifsessionid" VARCHAR(100) NOT NULL DEFAULT '',
    "queueid" VARCHAR(100) NOT NULL DEFAULT '',
    "mediatype" VARCHAR(100) NOT NULL DEFAULT '',

    CONSTRAINT "cif_analytics_agentevent_pkey" PRIMARY KEY ("cif_analytics_agenteventid")
);

-- CreateTable
CREATE TABLE "cif_analytics_openstate" (
    "cif_analytics_openstateid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "conversationid" VARCHAR(100) NOT NULL,
    "providersessionid" VARCHAR(100) NOT NULL DEFAULT '',
    "state" VARCHAR(20) NOT NULL,
    "since" TIMESTAMPTZ(3) NOT NULL,
    "lastactivity" TIMESTAMPTZ(3) NOT NULL,
    "queueid" VARCHAR(100) NOT NULL DEFAULT '',
    "mediatype" VARCHAR(100) NOT NULL DEFAULT '',
    "userid" VARCHAR(100) NOT NULL DEFAULT '',

    CONSTRAINT "cif_analytics_openstate_pkey" PRIMARY KEY ("cif_analytics_openstateid")
);

-- CreateIndex
CREATE INDEX "ix_cif_analytics_agentevent_userid" ON "cif_analytics_agentevent"("userid", "eventon");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_agentevent_eventon" ON "cif_analytics_agentevent"("eventon");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_agentevent_conversationid" ON "cif_analytics_agentevent"("conversationid");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_openstate_queueid" ON "cif_analytics_openstate"("queueid", "state");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_openstate_conversationid" ON "cif_analytics_openstate"("conversationid");


-- Both are the refresher's, on the coordinator of a Citus cluster (src/model/distribution.ts).
SELECT cif_place_table('cif_analytics_agentevent', 'coordinator');
SELECT cif_place_table('cif_analytics_openstate', 'coordinator');

-- Conversations derived before this migration are derived again, to fill these tables.
INSERT INTO "cif_analytics_dirty" ("conversationid") SELECT "msdyn_conversationid" FROM "msdyn_conversationdata";
