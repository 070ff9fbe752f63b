-- CreateTable
CREATE TABLE "cieventsaudit" (
    "cieventsauditid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "timegenerated" TIMESTAMPTZ(3) NOT NULL,
    "category" VARCHAR(20) NOT NULL,
    "operationname" VARCHAR(200) NOT NULL,
    "resulttype" VARCHAR(20),
    "resultsignature" VARCHAR(10),
    "durationms" BIGINT,
    "calleripaddress" VARCHAR(64),
    "correlationid" VARCHAR(100),
    "level" VARCHAR(20),
    "uri" VARCHAR(2000),
    "eventtype" VARCHAR(20) NOT NULL,
    "method" VARCHAR(10),
    "path" VARCHAR(2000),
    "origin" VARCHAR(400),
    "operationstatus" VARCHAR(20),
    "useragent" VARCHAR(400),
    "instanceid" VARCHAR(100),
    "callerobjectid" VARCHAR(100),
    "userrole" VARCHAR(200),
    "requiredroles" VARCHAR(400),
    "claims" VARCHAR(8000),
    "tenantid" VARCHAR(100),
    "tenantname" VARCHAR(100),
    "resourceid" VARCHAR(400),
    "writtenrecords" VARCHAR(1000000),
    "record" VARCHAR(1000000) NOT NULL,
    "transactionid" BIGINT NOT NULL DEFAULT (pg_current_xact_id())::text::bigint,
    "versionnumber" BIGSERIAL NOT NULL,

    CONSTRAINT "cieventsaudit_pkey" PRIMARY KEY ("cieventsauditid")
);

-- CreateTable
CREATE TABLE "cieventsoperational" (
    "cieventsoperationalid" UUID NOT NULL DEFAULT gen_random_uuid(),
    "timegenerated" TIMESTAMPTZ(3) NOT NULL,
    "category" VARCHAR(20) NOT NULL,
    "operationname" VARCHAR(200) NOT NULL,
    "resulttype" VARCHAR(20),
    "resultsignature" VARCHAR(10),
    "durationms" BIGINT,
    "calleripaddress" VARCHAR(64),
    "correlationid" VARCHAR(100),
    "level" VARCHAR(20),
    "uri" VARCHAR(2000),
    "eventtype" VARCHAR(20) NOT NULL,
    "method" VARCHAR(10),
    "path" VARCHAR(2000),
    "origin" VARCHAR(400),
    "operationstatus" VARCHAR(20),
    "useragent" VARCHAR(400),
    "instanceid" VARCHAR(100),
    "callerobjectid" VARCHAR(100),
    "userrole" VARCHAR(200),
    "requiredroles" VARCHAR(400),
    "claims" VARCHAR(8000),
    "tenantid" VARCHAR(100),
    "tenantname" VARCHAR(100),
    "resourceid" VARCHAR(400),
    "writtenrecords" VARCHAR(1000000),
    "record" VARCHAR(1000000) NOT NULL,
    "transactionid" BIGINT NOT NULL DEFAULT (pg_current_xact_id())::text::bigint,
    "versionnumber" BIGSERIAL NOT NULL,
    "operationtype" VARCHAR(100),
    "workflowjobid" VARCHAR(100),
    "workflowtype" VARCHAR(20),
    "workflowstatus" VARCHAR(20),
    "workflowsubmissionkind" VARCHAR(20),
    "submittedby" VARCHAR(100),
    "submittedtime" TIMESTAMPTZ(3),
    "starttime" TIMESTAMPTZ(3),
    "endtime" TIMESTAMPTZ(3),
    "taskscount" INTEGER,
    "identifier" VARCHAR(200),
    "friendlyname" VARCHAR(200),
    "error" VARCHAR(2000),
    "additionalinformation" VARCHAR(4000),

    CONSTRAINT "cieventsoperational_pkey" PRIMARY KEY ("cieventsoperationalid")
);

-- CreateIndex
CREATE INDEX "ix_cieventsaudit_transactionid" ON "cieventsaudit"("transactionid", "versionnumber");

-- CreateIndex
CREATE INDEX "ix_cieventsaudit_timegenerated" ON "cieventsaudit"("timegenerated");

-- CreateIndex
CREATE INDEX "ix_cieventsoperational_transactionid" ON "cieventsoperational"("transactionid", "versionnumber");

-- CreateIndex
CREATE INDEX "ix_cieventsoperational_timegenerated" ON "cieventsoperational"("timegenerated");

