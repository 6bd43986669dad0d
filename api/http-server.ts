// The HTTP server around the Koa app. Requests Node's parser refuses before Koa sees them (a request
// line and headers over Node's 16 KiB limit, malformed HTTP) get a problem+json answer like any other
// error, instead of a bare status line.
import { randomUUID } from 'node:crypto';
import http, { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Koa from 'koa';
import { ApiError } from '../lib/problems';
import { problemBody } from './errors';

function parserProblem(err: NodeJS.ErrnoException): ApiError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ApiError(431, 'HEADERS_TOO_LARGE', 'The URL and headers together are over 16 KiB; send long input in the request body');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ApiError(408, 'REQUEST_TIMEOUT', 'The request did not arrive in time');
    default:
      return new ApiError(400, 'MALFORMED_REQUEST', 'The request is not valid HTTP/1.1');
  }
}

export function createHttpServer<S>(app: Koa<S>): http.Server {
  const handle = app.callback();
  // Koa's handler settles every request itself (errors go to its onerror and a 500), so its promise never rejects.
  const server = http.createServer((req, res) => void handle(req, res));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // The client went away, or a response is already on its way: nothing to answer.
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as Duplex & { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    const problem = parserProblem(err);
    const body = JSON.stringify(problemBody(problem, randomUUID()));
    socket.end(
      `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
