-- CreateTable
CREATE TABLE "cif_analytics_dirty" (
    "cif_analytics_dirtyid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "conversationid" VARCHAR(100) NOT NULL,
    "seq" BIGSERIAL NOT NULL,

    CONSTRAINT "cif_analytics_dirty_pkey" PRIMARY KEY ("cif_analytics_dirtyid")
);

-- CreateTable
CREATE TABLE "cif_analytics_conversation" (
    "cif_analytics_conversationid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "conversationid" VARCHAR(100) NOT NULL,
    "conversationstart" TIMESTAMPTZ(3) NOT NULL,
    "conversationend" TIMESTAMPTZ(3),
    "originatingdirection" VARCHAR(20),

    CONSTRAINT "cif_analytics_conversation_pkey" PRIMARY KEY ("cif_analytics_conversationid")
);

-- CreateTable
CREATE TABLE "cif_analytics_segment" (
    "cif_analytics_segmentid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "conversationid" VARCHAR(100) NOT NULL,
    "conversationstart" TIMESTAMPTZ(3) NOT NULL,
    "providersessionid" VARCHAR(100) NOT NULL DEFAULT '',
    "participantid" VARCHAR(100) NOT NULL DEFAULT '',
    "participantname" VARCHAR(100) NOT NULL DEFAULT '',
    "purpose" VARCHAR(100) NOT NULL DEFAULT '',
    "queueid" VARCHAR(100) NOT NULL DEFAULT '',
    "mediatype" VARCHAR(100) NOT NULL DEFAULT '',
    "providerid" VARCHAR(100) NOT NULL DEFAULT '',
    "userid" VARCHAR(100) NOT NULL DEFAULT '',
    "direction" VARCHAR(100) NOT NULL DEFAULT '',
    "segmenttypes" VARCHAR(400) NOT NULL DEFAULT '',
    "disconnecttypes" VARCHAR(400) NOT NULL DEFAULT '',

    CONSTRAINT "cif_analytics_segment_pkey" PRIMARY KEY ("cif_analytics_segmentid")
);

-- CreateTable
CREATE TABLE "cif_analytics_metric" (
    "cif_analytics_metricid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "conversationid" VARCHAR(100) NOT NULL,
    "providersessionid" VARCHAR(100) NOT NULL DEFAULT '',
    "participantid" VARCHAR(100) NOT NULL DEFAULT '',
    "metric" VARCHAR(40) NOT NULL,
    "value" BIGINT NOT NULL,
    "emittedon" TIMESTAMPTZ(3) NOT NULL,
    "kpieventname" VARCHAR(100) NOT NULL DEFAULT '',
    "queueid" VARCHAR(100) NOT NULL DEFAULT '',
    "mediatype" VARCHAR(100) NOT NULL DEFAULT '',
    "providerid" VARCHAR(100) NOT NULL DEFAULT '',
    "userid" VARCHAR(100) NOT NULL DEFAULT '',
    "direction" VARCHAR(100) NOT NULL DEFAULT '',

    CONSTRAINT "cif_analytics_metric_pkey" PRIMARY KEY ("cif_analytics_metricid")
);

-- CreateTable
CREATE TABLE "cif_analytics_rollup" (
    "cif_analytics_rollupid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "grain" INTEGER NOT NULL,
    "metric" VARCHAR(40) NOT NULL,
    "bucketstart" TIMESTAMPTZ(3) NOT NULL,
    "queueid" VARCHAR(100) NOT NULL DEFAULT '',
    "mediatype" VARCHAR(100) NOT NULL DEFAULT '',
    "providerid" VARCHAR(100) NOT NULL DEFAULT '',
    "userid" VARCHAR(100) NOT NULL DEFAULT '',
    "direction" VARCHAR(100) NOT NULL DEFAULT '',
    "statcount" BIGINT NOT NULL,
    "statsum" BIGINT NOT NULL,
    "statmin" BIGINT NOT NULL,
    "statmax" BIGINT NOT NULL,

    CONSTRAINT "cif_analytics_rollup_pkey" PRIMARY KEY ("cif_analytics_rollupid")
);

-- CreateIndex
CREATE INDEX "ix_cif_analytics_dirty_seq" ON "cif_analytics_dirty"("seq");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_dirty_conversationid" ON "cif_analytics_dirty"("conversationid");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_conversation_conversationstart" ON "cif_analytics_conversation"("conversationstart");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_conversation_conversationend" ON "cif_analytics_conversation"("conversationend");

-- CreateIndex
CREATE UNIQUE INDEX "ak_cif_analytics_conversation_natural_key" ON "cif_analytics_conversation"("conversationid");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_segment_conversationid" ON "cif_analytics_segment"("conversationid");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_segment_queueid" ON "cif_analytics_segment"("queueid", "conversationstart");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_segment_userid" ON "cif_analytics_segment"("userid", "conversationstart");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_metric_conversationid" ON "cif_analytics_metric"("conversationid");

-- CreateIndex
CREATE INDEX "ix_cif_analytics_metric_metric" ON "cif_analytics_metric"("metric", "emittedon");

-- CreateIndex
CREATE UNIQUE INDEX "ak_cif_analytics_rollup_natural_key" ON "cif_analytics_rollup"("grain", "metric", "bucketstart", "queueid", "mediatype", "providerid", "userid", "direction");


-- Every change to a conversation's tree marks the conversation for re-derivation, in the
-- writing transaction: statement-level triggers with transition tables, so a statement of
-- a thousand events adds one INSERT of its distinct conversation ids.
CREATE FUNCTION "cif_analytics_mark_new"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "cif_analytics_dirty" ("conversationid") SELECT DISTINCT "msdyn_conversationid" FROM new_rows;
  RETURN NULL;
END
$$;

CREATE FUNCTION "cif_analytics_mark_old"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "cif_analytics_dirty" ("conversationid") SELECT DISTINCT "msdyn_conversationid" FROM old_rows;
  RETURN NULL;
END
$$;

CREATE FUNCTION "cif_analytics_mark_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "cif_analytics_dirty" ("conversationid")
    SELECT "msdyn_conversationid" FROM new_rows UNION SELECT "msdyn_conversationid" FROM old_rows;
  RETURN NULL;
END
$$;

CREATE TRIGGER "cif_analytics_inserted" AFTER INSERT ON "msdyn_conversationdata" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_new"();
CREATE TRIGGER "cif_analytics_updated" AFTER UPDATE ON "msdyn_conversationdata" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_changed"();
CREATE TRIGGER "cif_analytics_deleted" AFTER DELETE ON "msdyn_conversationdata" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_old"();
CREATE TRIGGER "cif_analytics_inserted" AFTER INSERT ON "msdyn_sessiondata" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_new"();
CREATE TRIGGER "cif_analytics_updated" AFTER UPDATE ON "msdyn_sessiondata" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_changed"();
CREATE TRIGGER "cif_analytics_deleted" AFTER DELETE ON "msdyn_sessiondata" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_old"();
CREATE TRIGGER "cif_analytics_inserted" AFTER INSERT ON "msdyn_sessionparticipantdata" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_new"();
CREATE TRIGGER "cif_analytics_updated" AFTER UPDATE ON "msdyn_sessionparticipantdata" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_changed"();
CREATE TRIGGER "cif_analytics_deleted" AFTER DELETE ON "msdyn_sessionparticipantdata" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_old"();
CREATE TRIGGER "cif_analytics_inserted" AFTER INSERT ON "msdyn_kpieventdata" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_new"();
CREATE TRIGGER "cif_analytics_updated" AFTER UPDATE ON "msdyn_kpieventdata" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_changed"();
CREATE TRIGGER "cif_analytics_deleted" AFTER DELETE ON "msdyn_kpieventdata" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_old"();

-- Conversations stored before this migration are derived by the refresher.
INSERT INTO "cif_analytics_dirty" ("conversationid") SELECT "msdyn_conversationid" FROM "msdyn_conversationdata";

-- The custom KPI event definitions the analytics read (src/model/tables.ts ANALYTICS_KPI_EVENT_DEFINITIONS).
INSERT INTO "msdyn_kpieventdefinition" ("msdyn_kpieventdefinitionid", "msdyn_name", "msdyn_eventdisplayname", "msdyn_eventdescription", "msdyn_eventtype", "ownerid", "createdby", "modifiedby") VALUES
    ('3f0c2a41-7d1e-4c5b-9a61-0a1e00000001', 'CallHold', 'Call Hold', 'The agent put the customer on hold (tHeld runs until the next CallUnhold of the same session and participant).', 100000001, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('3f0c2a41-7d1e-4c5b-9a61-0a1e00000002', 'CallUnhold', 'Call Unhold', 'The agent took the customer off hold.', 100000001, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('3f0c2a41-7d1e-4c5b-9a61-0a1e00000003', 'WrapUpStarted', 'Wrap-up Started', 'The conversation with the customer ended and after-call work began (tAcw runs until SessionClosed).', 100000001, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('3f0c2a41-7d1e-4c5b-9a61-0a1e00000004', 'ConversationAbandoned', 'Conversation Abandoned', 'The customer left while waiting in queue, before an agent accepted (tAbandon).', 100000001, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('3f0c2a41-7d1e-4c5b-9a61-0a1e00000005', 'ConversationTransferred', 'Conversation Transferred', 'The agent transferred the conversation (nTransferred); the reason may name the target queue or agent.', 100000001, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('3f0c2a41-7d1e-4c5b-9a61-0a1e00000006', 'PresenceChanged', 'Presence Changed', 'The agent''s presence changed; msdyn_kpieventreason holds the new presence (for example AVAILABLE, BUSY, AWAY).', 100000001, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001');

-- Room on each page, so that moving a cell's counts stays a heap-only update on its page.
ALTER TABLE "cif_analytics_rollup" SET (fillfactor = 70);
