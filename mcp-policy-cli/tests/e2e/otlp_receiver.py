"""An OTLP/HTTP trace receiver for the tracing tests: accepts `POST /v1/traces` (protobuf,
gzip or not), decodes each ExportTraceServiceRequest with the official messages
(opentelemetry-proto) and appends one JSON line per span to the file given as argv[1]:
trace and span ids in hex, the parent span id, name, kind, attributes, status, and the
resource's service.name. Prints `listening on PORT` once it listens on 127.0.0.1."""

import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def value_of(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        with open(sys.argv[1], "a", encoding="utf-8") as out:
            for rs in request.resource_spans:
                service = {a.key: value_of(a.value) for a in rs.resource.attributes}.get("service.name")
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        out.write(json.dumps({
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "name": span.name,
                            "kind": span.kind,
                            "attributes": {a.key: value_of(a.value) for a in span.attributes},
                            "status": span.status.code,
                            "service": service,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                        }) + "\n")
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
