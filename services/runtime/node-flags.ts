/**
 * The node options every service process is started with: the start
 * scripts (package.json), the images (deploy/docker/Dockerfile) and the
 * benchmarks' processes. node-flags.test.ts checks each copy.
 *
 * `--min-semi-space-size=16`: V8's young generation at its full size (16 MB
 * per semi-space, node's own maximum on 64-bit) from the start, instead of
 * 1 MB growing during start-up (16 scavenges in the first second instead of
 * 4; under load the two are alike). With node's default, some EventService processes
 * (11 of 76 fresh ones measured) settled for their whole life into promoting
 * whole calls to the old space, at up to half again the CPU per call and
 * twice the p99; with this flag none of 66 did, at the same RSS under load
 * (bench/README.md, finding 17); it costs 60-130 ms of start-up. V8 reads it only when the heap is made: it
 * cannot go in NODE_OPTIONS (node refuses it there) or be set at run time.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ["--min-semi-space-size=16"];
