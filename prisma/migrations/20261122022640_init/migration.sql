-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "msdyn_ciprovider" (
    "msdyn_ciproviderid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "msdyn_name" VARCHAR(100),
    "msdyn_label" VARCHAR(100),
    "msdyn_landingurl" VARCHAR(1024),
    "msdyn_enableanalytics" BOOLEAN NOT NULL DEFAULT false,
    "msdyn_clicktoact" BOOLEAN NOT NULL DEFAULT false,
    "msdyn_sortorder" INTEGER,
    "msdyn_ciproviderapiversion" INTEGER NOT NULL DEFAULT 0,
    "msdyn_appselector" VARCHAR(4000),
    "msdyn_roleselector" VARCHAR(4000),
    "msdyn_trusteddomain" VARCHAR(2000),
    "msdyn_customparams" VARCHAR(2000),
    "msdyn_cifsolversion" VARCHAR(2000),
    "msdyn_sandboxconfiguration" VARCHAR(2000),
    "msdyn_channelprovidericon" UUID,
    "organizationid" UUID,
    "createdby" UUID,
    "createdonbehalfby" UUID,
    "modifiedby" UUID,
    "modifiedonbehalfby" UUID,
    "createdon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modifiedon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "overriddencreatedon" TIMESTAMPTZ(3),
    "importsequencenumber" INTEGER,
    "timezoneruleversionnumber" INTEGER,
    "utcconversiontimezonecode" INTEGER,
    "versionnumber" BIGINT NOT NULL DEFAULT 0,
    "statecode" INTEGER NOT NULL DEFAULT 0,
    "statuscode" INTEGER NOT NULL DEFAULT 1,

    CONSTRAINT "msdyn_ciprovider_pkey" PRIMARY KEY ("msdyn_ciproviderid")
);

-- CreateTable
CREATE TABLE "msdyn_kpieventdefinition" (
    "msdyn_kpieventdefinitionid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "msdyn_name" VARCHAR(100) NOT NULL,
    "msdyn_eventdisplayname" VARCHAR(100),
    "msdyn_eventdescription" VARCHAR(1000),
    "msdyn_eventtype" INTEGER,
    "ownerid" UUID NOT NULL,
    "owningbusinessunit" UUID,
    "createdby" UUID,
    "createdonbehalfby" UUID,
    "modifiedby" UUID,
    "modifiedonbehalfby" UUID,
    "createdon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modifiedon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "overriddencreatedon" TIMESTAMPTZ(3),
    "importsequencenumber" INTEGER,
    "timezoneruleversionnumber" INTEGER,
    "utcconversiontimezonecode" INTEGER,
    "versionnumber" BIGINT NOT NULL DEFAULT 0,
    "statecode" INTEGER NOT NULL DEFAULT 0,
    "statuscode" INTEGER NOT NULL DEFAULT 1,

    CONSTRAINT "msdyn_kpieventdefinition_pkey" PRIMARY KEY ("msdyn_kpieventdefinitionid")
);

-- CreateTable
CREATE TABLE "msdyn_conversationdata" (
    "msdyn_conversationdataid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "msdyn_name" VARCHAR(100),
    "msdyn_conversationid" VARCHAR(100) NOT NULL,
    "msdyn_conversationtimestamp" TIMESTAMPTZ(3),
    "msdyn_channel" VARCHAR(100),
    "msdyn_accountid" VARCHAR(100),
    "msdyn_contactid" VARCHAR(100),
    "msdyn_additionaldata" VARCHAR(1000),
    "msdyn_region" VARCHAR(1000),
    "msdyn_customercity" VARCHAR(100),
    "msdyn_customerstate" VARCHAR(100),
    "msdyn_customercountry" VARCHAR(100),
    "msdyn_customerzip" VARCHAR(100),
    "msdyn_externalcorrelationid" VARCHAR(100),
    "msdyn_primaryrelatedentityname" VARCHAR(100),
    "msdyn_primaryrelatedentityrecordid" VARCHAR(100),
    "msdyn_providerid" VARCHAR(100),
    "msdyn_providername" VARCHAR(100),
    "msdyn_customattribute1" VARCHAR(100),
    "msdyn_customattribute2" VARCHAR(100),
    "msdyn_customattribute3" VARCHAR(100),
    "msdyn_customattribute4" VARCHAR(100),
    "msdyn_customattribute5" VARCHAR(100),
    "ownerid" UUID NOT NULL,
    "owningbusinessunit" UUID,
    "createdby" UUID,
    "createdonbehalfby" UUID,
    "modifiedby" UUID,
    "modifiedonbehalfby" UUID,
    "createdon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modifiedon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "overriddencreatedon" TIMESTAMPTZ(3),
    "importsequencenumber" INTEGER,
    "timezoneruleversionnumber" INTEGER,
    "utcconversiontimezonecode" INTEGER,
    "versionnumber" BIGINT NOT NULL DEFAULT 0,
    "statecode" INTEGER NOT NULL DEFAULT 0,
    "statuscode" INTEGER NOT NULL DEFAULT 1,

    CONSTRAINT "msdyn_conversationdata_pkey" PRIMARY KEY ("msdyn_conversationdataid")
);

-- CreateTable
CREATE TABLE "msdyn_sessiondata" (
    "msdyn_sessiondataid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "msdyn_name" VARCHAR(100),
    "msdyn_conversationid" VARCHAR(100) NOT NULL,
    "msdyn_providersessionid" VARCHAR(100) NOT NULL,
    "msdyn_ucisessionid" VARCHAR(100),
    "msdyn_ucisessionname" VARCHAR(100),
    "msdyn_sessionchannel" VARCHAR(100),
    "msdyn_sessioncreationreason" VARCHAR(100),
    "msdyn_sessionadditionaldata" VARCHAR(100),
    "msdyn_externalcorrelationid" VARCHAR(100),
    "msdyn_queueid" VARCHAR(100),
    "msdyn_queuename" VARCHAR(100),
    "msdyn_sessioncreatedtimestamp" TIMESTAMPTZ(3),
    "msdyn_sessionagentassignedtimestamp" TIMESTAMPTZ(3),
    "msdyn_sessionqueueassignedtimestamp" TIMESTAMPTZ(3),
    "msdyn_customattribute1" VARCHAR(100),
    "msdyn_customattribute2" VARCHAR(100),
    "msdyn_customattribute3" VARCHAR(100),
    "msdyn_customattribute4" VARCHAR(100),
    "msdyn_customattribute5" VARCHAR(100),
    "ownerid" UUID NOT NULL,
    "owningbusinessunit" UUID,
    "createdby" UUID,
    "createdonbehalfby" UUID,
    "modifiedby" UUID,
    "modifiedonbehalfby" UUID,
    "createdon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modifiedon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "overriddencreatedon" TIMESTAMPTZ(3),
    "importsequencenumber" INTEGER,
    "timezoneruleversionnumber" INTEGER,
    "utcconversiontimezonecode" INTEGER,
    "versionnumber" BIGINT NOT NULL DEFAULT 0,
    "statecode" INTEGER NOT NULL DEFAULT 0,
    "statuscode" INTEGER NOT NULL DEFAULT 1,

    CONSTRAINT "msdyn_sessiondata_pkey" PRIMARY KEY ("msdyn_sessiondataid")
);

-- CreateTable
CREATE TABLE "msdyn_sessionparticipantdata" (
    "msdyn_sessionparticipantdataid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "msdyn_name" VARCHAR(100),
    "msdyn_conversationid" VARCHAR(100) NOT NULL,
    "msdyn_providersessionid" VARCHAR(100) NOT NULL,
    "msdyn_participantid" VARCHAR(100) NOT NULL,
    "msdyn_participantname" VARCHAR(100),
    "msdyn_participantmode" VARCHAR(100),
    "msdyn_participanttype" VARCHAR(100),
    "msdyn_participantassignreason" VARCHAR(100),
    "msdyn_participantaddedtimestamp" TIMESTAMPTZ(3),
    "msdyn_customattribute1" VARCHAR(100),
    "msdyn_customattribute2" VARCHAR(100),
    "msdyn_customattribute3" VARCHAR(100),
    "msdyn_customattribute4" VARCHAR(100),
    "msdyn_customattribute5" VARCHAR(100),
    "ownerid" UUID NOT NULL,
    "owningbusinessunit" UUID,
    "createdby" UUID,
    "createdonbehalfby" UUID,
    "modifiedby" UUID,
    "modifiedonbehalfby" UUID,
    "createdon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modifiedon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "overriddencreatedon" TIMESTAMPTZ(3),
    "importsequencenumber" INTEGER,
    "timezoneruleversionnumber" INTEGER,
    "utcconversiontimezonecode" INTEGER,
    "versionnumber" BIGINT NOT NULL DEFAULT 0,
    "statecode" INTEGER NOT NULL DEFAULT 0,
    "statuscode" INTEGER NOT NULL DEFAULT 1,

    CONSTRAINT "msdyn_sessionparticipantdata_pkey" PRIMARY KEY ("msdyn_sessionparticipantdataid")
);

-- CreateTable
CREATE TABLE "msdyn_kpieventdata" (
    "msdyn_kpieventdataid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "msdyn_name" VARCHAR(100),
    "msdyn_kpieventid" UUID NOT NULL,
    "msdyn_kpieventname" VARCHAR(100),
    "msdyn_kpieventreason" VARCHAR(100),
    "msdyn_eventtimestamp" TIMESTAMPTZ(3),
    "msdyn_additionaldata" VARCHAR(2000),
    "msdyn_conversationid" VARCHAR(100) NOT NULL,
    "msdyn_providersessionid" VARCHAR(100) NOT NULL,
    "msdyn_clientsessionid" VARCHAR(100),
    "msdyn_sessionId" VARCHAR(100),
    "msdyn_cifSessionId" VARCHAR(100),
    "msdyn_ProviderId" VARCHAR(100),
    "msdyn_participantid" VARCHAR(100),
    "msdyn_externalcorrelationid" VARCHAR(100),
    "msdyn_notificationresponseaction" VARCHAR(100),
    "msdyn_customattribute1" VARCHAR(100),
    "msdyn_customattribute2" VARCHAR(100),
    "msdyn_customattribute3" VARCHAR(100),
    "msdyn_customattribute4" VARCHAR(100),
    "msdyn_customattribute5" VARCHAR(100),
    "ownerid" UUID NOT NULL,
    "owningbusinessunit" UUID,
    "createdby" UUID,
    "createdonbehalfby" UUID,
    "modifiedby" UUID,
    "modifiedonbehalfby" UUID,
    "createdon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modifiedon" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "overriddencreatedon" TIMESTAMPTZ(3),
    "importsequencenumber" INTEGER,
    "timezoneruleversionnumber" INTEGER,
    "utcconversiontimezonecode" INTEGER,
    "versionnumber" BIGINT NOT NULL DEFAULT 0,
    "statecode" INTEGER NOT NULL DEFAULT 0,
    "statuscode" INTEGER NOT NULL DEFAULT 1,

    CONSTRAINT "msdyn_kpieventdata_pkey" PRIMARY KEY ("msdyn_kpieventdataid")
);

-- CreateIndex
CREATE UNIQUE INDEX "ak_msdyn_kpieventdefinition_natural_key" ON "msdyn_kpieventdefinition"("msdyn_name");

-- CreateIndex
CREATE UNIQUE INDEX "ak_msdyn_conversationdata_natural_key" ON "msdyn_conversationdata"("msdyn_conversationid");

-- CreateIndex
CREATE UNIQUE INDEX "ak_msdyn_sessiondata_natural_key" ON "msdyn_sessiondata"("msdyn_conversationid", "msdyn_providersessionid");

-- CreateIndex
CREATE UNIQUE INDEX "ak_msdyn_sessionparticipantdata_natural_key" ON "msdyn_sessionparticipantdata"("msdyn_conversationid", "msdyn_providersessionid", "msdyn_participantid");

-- CreateIndex
CREATE INDEX "ix_msdyn_kpieventdata_conversationid" ON "msdyn_kpieventdata"("msdyn_conversationid", "msdyn_providersessionid", "msdyn_participantid");

-- CreateIndex
CREATE INDEX "ix_msdyn_kpieventdata_eventtimestamp" ON "msdyn_kpieventdata"("msdyn_eventtimestamp");

-- CreateIndex
CREATE INDEX "ix_msdyn_kpieventdata_kpieventid" ON "msdyn_kpieventdata"("msdyn_kpieventid");

-- AddForeignKey
ALTER TABLE "msdyn_sessiondata" ADD CONSTRAINT "fk_msdyn_sessiondata_msdyn_conversation" FOREIGN KEY ("msdyn_conversationid") REFERENCES "msdyn_conversationdata"("msdyn_conversationid") ON DELETE CASCADE ON UPDATE NO ACTION;

-- AddForeignKey
ALTER TABLE "msdyn_sessionparticipantdata" ADD CONSTRAINT "fk_msdyn_sessionparticipantdata_msdyn_session" FOREIGN KEY ("msdyn_conversationid", "msdyn_providersessionid") REFERENCES "msdyn_sessiondata"("msdyn_conversationid", "msdyn_providersessionid") ON DELETE CASCADE ON UPDATE NO ACTION;

-- AddForeignKey
ALTER TABLE "msdyn_kpieventdata" ADD CONSTRAINT "fk_msdyn_kpieventdata_msdyn_session" FOREIGN KEY ("msdyn_conversationid", "msdyn_providersessionid") REFERENCES "msdyn_sessiondata"("msdyn_conversationid", "msdyn_providersessionid") ON DELETE CASCADE ON UPDATE NO ACTION;

-- AddForeignKey
ALTER TABLE "msdyn_kpieventdata" ADD CONSTRAINT "fk_msdyn_kpieventdata_msdyn_participant" FOREIGN KEY ("msdyn_conversationid", "msdyn_providersessionid", "msdyn_participantid") REFERENCES "msdyn_sessionparticipantdata"("msdyn_conversationid", "msdyn_providersessionid", "msdyn_participantid") ON DELETE CASCADE ON UPDATE NO ACTION;

-- AddForeignKey
ALTER TABLE "msdyn_kpieventdata" ADD CONSTRAINT "fk_msdyn_kpieventdata_msdyn_definition" FOREIGN KEY ("msdyn_kpieventid") REFERENCES "msdyn_kpieventdefinition"("msdyn_kpieventdefinitionid") ON DELETE RESTRICT ON UPDATE NO ACTION;


-- ---------------------------------------------------------------------------
-- Hand-written SQL below (not generated by Prisma).

-- versionnumber: one sequence for every table, like the Dataverse row version; ETags use it.
-- A trigger assigns it, so no write path can forget to.
CREATE SEQUENCE "row_version_seq" AS BIGINT;

CREATE FUNCTION "set_row_version"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW."versionnumber" := nextval('row_version_seq');
  IF TG_OP = 'UPDATE' THEN
    NEW."modifiedon" := now();
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER "set_row_version" BEFORE INSERT OR UPDATE ON "msdyn_ciprovider" FOR EACH ROW EXECUTE FUNCTION "set_row_version"();
CREATE TRIGGER "set_row_version" BEFORE INSERT OR UPDATE ON "msdyn_kpieventdefinition" FOR EACH ROW EXECUTE FUNCTION "set_row_version"();
CREATE TRIGGER "set_row_version" BEFORE INSERT OR UPDATE ON "msdyn_conversationdata" FOR EACH ROW EXECUTE FUNCTION "set_row_version"();
CREATE TRIGGER "set_row_version" BEFORE INSERT OR UPDATE ON "msdyn_sessiondata" FOR EACH ROW EXECUTE FUNCTION "set_row_version"();
CREATE TRIGGER "set_row_version" BEFORE INSERT OR UPDATE ON "msdyn_sessionparticipantdata" FOR EACH ROW EXECUTE FUNCTION "set_row_version"();
CREATE TRIGGER "set_row_version" BEFORE INSERT OR UPDATE ON "msdyn_kpieventdata" FOR EACH ROW EXECUTE FUNCTION "set_row_version"();

-- The ten system KPI event definitions of the CIF analytics solution.
INSERT INTO "msdyn_kpieventdefinition" ("msdyn_kpieventdefinitionid", "msdyn_name", "msdyn_eventdisplayname", "msdyn_eventtype", "ownerid", "createdby", "modifiedby") VALUES
    ('6716695d-1bd9-e911-a838-000d3a375590', 'NotificationReceived', 'Notification Received', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('7b37d3a5-1bd9-e911-a838-000d3a375590', 'NotificationTimedOut', 'Notification TimedOut', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('1d30a3cb-1bd9-e911-a838-000d3a375590', 'SessionStarted', 'Session Started', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('c77081f2-1bd9-e911-a838-000d3a375590', 'SessionClosed', 'Session Closed', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('b0277f3b-c4c0-4d33-9c27-8114eaace944', 'CifSessionStart', 'Cif Session Start', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('0d232df5-96ff-49cd-9ebe-b5bc3f44a080', 'CifSessionEnd', 'Cif Session End', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('0e281360-0c69-47c1-9d2a-1039e1bbeb4b', 'NotificationAccepted', 'Notification Accepted', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('d698cbf7-ef47-4a7d-83b9-80fd66da804e', 'NotificationRejected', 'Notification Rejected', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('740b615b-769b-4972-b66c-0b22970a80ca', 'SessionFocusIn', 'Session Focus In', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001'),
    ('cd3526ab-ac21-4bd5-aace-15c84f9ca29d', 'SessionFocusOut', 'Session Focus Out', 100000000, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001');
