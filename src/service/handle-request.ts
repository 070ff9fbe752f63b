/**
 * One OData request against the entity sets and operations, as a function of plain data,
 * in four stages, each a module of its own (as PostgREST runs a request):
 *
 *   parse (./pipeline/parse.ts) → plan (./pipeline/plan.ts) → authorize (./pipeline/authorize.ts)
 *   → execute (./pipeline/execute.ts)
 *   → respond (./pipeline/respond.ts)
 *
 * The HTTP route and every `$batch` part run through here, so they behave alike; a `$batch`
 * change set passes a context bound to its transaction. Each stage is timed and observed.
 */
import { ODataError } from "../odata/errors.js";
import type { ODataResponse } from "../odata/response.js";
import type { Observer, StageName } from "../observe/observation.js";
import { CORRELATION_HEADER, type ODataRequest, type RequestContext } from "./odata-request.js";
import { privilegeName } from "../model/privileges.js";
import { privilegesOf } from "./pipeline/authorize.js";
import { executePlan } from "./pipeline/execute.js";
import { parseODataRequest } from "./pipeline/parse.js";
import { planRequest } from "./pipeline/plan.js";
import { respond, successStatusOf } from "./pipeline/respond.js";

export async function handleODataRequest(request: ODataRequest, context: RequestContext): Promise<ODataResponse> {
  let correlationId: string | undefined;
  const observe: Observer = (observation) => {
    if (observation.kind === "correlation") correlationId = observation.correlationId;
    context.observe(observation);
  };
  const timed = <T>(stage: StageName, run: () => T): T => {
    const started = performance.now();
    const done = () => observe({ kind: "stage", stage, ms: performance.now() - started });
    let result: T;
    try {
      result = run();
    } catch (error) {
      done();
      throw error;
    }
    if (result instanceof Promise) return result.finally(done) as T;
    done();
    return result;
  };

  try {
    const parsed = timed("parse", () => parseODataRequest(request, context.operations));
    const plan = timed("plan", () => planRequest(parsed, request));
    observe({ kind: "operation", name: plan.operationName, entitySet: plan.table?.entitySetName });
    const needs = privilegesOf(plan);
    observe({ kind: "requirements", privileges: needs.map(privilegeName), successStatus: successStatusOf(plan) });
    timed("authorize", () => context.access.require(needs));
    const result = await timed("execute", () => executePlan(plan, { ...context, observe }));
    const response = timed("respond", () => respond(plan, result));
    if (correlationId) response.headers[CORRELATION_HEADER] = correlationId;
    return response;
  } catch (error) {
    // A correlation id given with the request is echoed on its refusal too.
    if (error instanceof ODataError && correlationId) throw error.withHeaders({ [CORRELATION_HEADER]: correlationId });
    throw error;
  }
}
