import { describe, expect, it } from "vitest";
import {
  classifyStack,
  formatPerfTable,
  parsePerfScript,
  perfCommand,
  perfMs,
  threadGroup,
} from "../../bench/perfProfile.ts";

// Samples as `perf script -F comm,tid,ip,sym` prints them (taken from a profile of one move, frames shortened).
const SCRIPT = `V8Worker  6477
\t          bc73fc v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>
\t          bdfb31 v8::internal::Scavenger::ScavengePage

V8Worker  6480
\t         2441680 v8::internal::compiler::turboshaft::SupportedOperations::Initialize
\t         2546d5a v8::internal::compiler::PipelineCompilationJob::ExecuteJobImpl

V8Worker  6477
\t          a97cea v8::internal::ConcurrentMarking::RunMajor
\t          5de618 node::(anonymous namespace)::PlatformWorkerThread

WorkerThread  6482
\t          c52eb1 v8::internal::interpreter::BytecodeGenerator::BytecodeGenerator
\t          92d15b v8::internal::(anonymous namespace)::IterativelyExecuteAndFinalizeUnoptimizedCompilationJobs
\t          93d000 v8::internal::Compiler::Compile

WorkerThread  6482
\t         11914ec v8::internal::maglev::MaglevCompilationInfo::MaglevCompilationInfo
\t          93cba7 v8::internal::Compiler::CompileOptimized

WorkerThread  6482
\tffffffff82064894 tcp_sendmsg_locked
\tffffffff816d955e do_iter_readv_writev

MainThread  6474
\t         101af19 v8::internal::ReadOnlyDeserializer::PostProcessNewObjects

libuv-worker  6485
\tffffffff816dc4e6 vfs_write
`;

describe("parsePerfScript", () => {
  it("counts each sample once, by thread group and by what its stack was doing", () => {
    const profile = parsePerfScript(SCRIPT, 1000);
    expect(profile.samples).toBe(8);
    expect(profile.byThread.v8Helpers).toEqual({ scavenge: 1, markSweep: 1, jit: 1, compile: 0, rest: 0 });
    // The Maglev job runs under Compiler::CompileOptimized: a JIT sample, not a compile of bytecode.
    expect(profile.byThread.workers).toEqual({ scavenge: 0, markSweep: 0, jit: 1, compile: 1, rest: 1 });
    expect(profile.byThread.main).toEqual({ scavenge: 0, markSweep: 0, jit: 0, compile: 1, rest: 0 });
    expect(profile.byThread.other).toEqual({ scavenge: 0, markSweep: 0, jit: 0, compile: 0, rest: 1 });
  });

  it("turns samples into ms of CPU at the sampling rate, each split summing to the total", () => {
    const ms = perfMs(parsePerfScript(SCRIPT, 500)); // 2 ms a sample
    expect(ms.total).toBe(16);
    expect(ms.threads).toEqual({ main: 2, workers: 6, v8Helpers: 6, other: 2 });
    expect(ms.kinds).toEqual({ scavenge: 2, markSweep: 2, jit: 4, compile: 4, rest: 4 });
  });

  it("ignores empty output", () => {
    expect(parsePerfScript("\n\n", 999).samples).toBe(0);
  });
});

describe("classifyStack and threadGroup", () => {
  it("tells the collectors, the compilers and the rest apart", () => {
    expect(classifyStack(["v8::internal::MinorMarkSweepCollector::MarkLiveObjects"])).toBe("scavenge");
    expect(classifyStack(["v8::internal::Sweeper::RawSweep"])).toBe("markSweep");
    expect(classifyStack(["v8::internal::baseline::BaselineCompiler::Build"])).toBe("jit");
    expect(classifyStack(["Builtins_CompileLazy"])).toBe("compile");
    expect(classifyStack(["node::http_parser::Parser::Execute", "uv__read"])).toBe("rest");
    expect(classifyStack([])).toBe("rest");
  });

  it("groups Node's thread names", () => {
    expect(threadGroup("MainThread")).toBe("main");
    expect(threadGroup("node")).toBe("main"); // before Node renames it
    expect(threadGroup("WorkerThread")).toBe("workers");
    expect(threadGroup("V8Worker")).toBe("v8Helpers");
    expect(threadGroup("libuv-worker")).toBe("other");
    expect(threadGroup("rclone")).toBe("other");
  });
});

describe("perfCommand and formatPerfTable", () => {
  it("runs the tool's own command under perf record", () => {
    const wrapped = perfCommand(
      { file: "/usr/bin/node", args: ["bin/x.js", "move"], env: {}, cwd: "/tmp" },
      "/tmp/p.data",
    );
    expect(wrapped.file).toBe("perf");
    expect(wrapped.args.slice(-3)).toEqual(["/usr/bin/node", "bin/x.js", "move"]);
    expect(wrapped.args).toContain("-g");
    expect(wrapped.args[wrapped.args.indexOf("-o") + 1]).toBe("/tmp/p.data");
    expect(wrapped.cwd).toBe("/tmp");
  });

  it("prints the mean of a tool's runs and leaves out tools without a profile", () => {
    const one = parsePerfScript(SCRIPT, 1000);
    const table = formatPerfTable([
      { tool: "ours", profiles: [one, parsePerfScript(`${SCRIPT}\n${SCRIPT}`, 1000)] },
      { tool: "rclone-tuned", profiles: [] },
    ]);
    const lines = table.split("\n");
    expect(lines).toHaveLength(3);
    // 8 and 16 samples at 1 ms: a mean of 12 ms; main thread 1 and 2 (1.5, rounded up), workers 3 and 6, V8 helpers
    // 3 and 6.
    expect(lines[2]).toBe("| ours | 2 | 12 | 2 | 5 | 5 | 2 | 2 | 2 | 3 | 3 | 3 |");
  });
});
