/**
 * fastify's per-request log lines ("incoming request", "request completed") at debug instead of info: at the
 * default level the log holds the server's own events, and a request costs no log line; `--log-level debug`
 * (or trace) brings them back. Requests that error are still logged at error, as fastify does.
 */
import { type FastifyReply, type FastifyRequest, LogController } from "fastify";

export class RequestLogs extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, "incoming request");
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) super.requestCompleted(error, request, reply);
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, "request completed");
  }
}
