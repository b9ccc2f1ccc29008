import { createRequire } from 'node:module';

/**
 * The child process that holds a whisper.cpp model (started by whisper.engine.ts). whisper.cpp
 * aborts the whole process on some malformed model files and on native failures (GGML_ASSERT),
 * and loading a large model blocks the thread for seconds: both must stay out of the server.
 * Messages arrive over the IPC channel; replies carry the request id.
 *
 * A helper holds one or two contexts (slots), each a loaded copy of the model: slot 0 serves
 * everything, slot 1 (loaded only when asked, by the first live call that finds slot 0 busy)
 * lets a live utterance run beside an upload chunk instead of waiting for it. One context runs one
 * call at a time (whisper.node locks it), so requests queue per slot.
 */
export type WhisperVariant = 'default' | 'cuda';

/**
 * The part of @fugood/whisper.node's API used here, written out because the package ships its
 * TypeScript sources without declaration files (compiling them under our settings fails). The
 * shapes follow its lib/binding.ts (1.1.x).
 */
interface WhisperContext {
  transcribeData(
    audio: ArrayBuffer,
    options: {
      language?: string;
      tokenTimestamps?: boolean;
      maxLen?: number;
      temperature?: number;
      maxThreads?: number;
      onProgress?: (percent: number) => void;
    },
  ): { stop: () => Promise<void>; promise: Promise<{ segments: HostSegment[]; isAborted: boolean }> };
  release(): Promise<void>;
}
interface WhisperNode {
  initWhisper(
    options: { filePath: string; useGpu?: boolean },
    variant?: WhisperVariant,
  ): Promise<WhisperContext>;
  toggleNativeLog(enable: boolean): Promise<void>;
  addNativeLogListener(listener: (level: string, text: string) => void): { remove: () => void };
}
// A variable, not a literal, so the compiler does not try to type-check the package's sources.
const WHISPER_PACKAGE: string = '@fugood/whisper.node';

export type HostRequest =
  | { type: 'load'; slot: number; modelPath: string; useGpu: boolean; variant: WhisperVariant }
  | {
      type: 'transcribe';
      id: number;
      slot: number;
      pcm: Uint8Array;
      language: string | undefined;
      threads: number;
    };

export interface HostSegment {
  text: string;
  /** Milliseconds (whisper.node converts whisper.cpp's centiseconds). */
  t0: number;
  t1: number;
}

export type HostReply =
  | { type: 'loaded'; slot: number; gpuDevice: string | undefined; noGpuReason: string | undefined }
  | { type: 'load-failed'; slot: number; message: string; problem: 'model' | 'runtime' }
  | { type: 'progress'; id: number; percent: number }
  | { type: 'result'; id: number; segments: HostSegment[] }
  | { type: 'failed'; id: number; message: string };

const contexts: (WhisperContext | undefined)[] = [];

function send(reply: HostReply): void {
  process.send?.(reply);
}

/** The package name whisper.node itself loads for a variant (it silently falls back when that fails). */
function platformPackage(variant: WhisperVariant): string {
  return `@fugood/node-whisper-${process.platform}-${process.arch}${variant === 'default' ? '' : `-${variant}`}`;
}

async function load(req: Extract<HostRequest, { type: 'load' }>): Promise<void> {
  if (req.variant !== 'default') {
    try {
      // require, as whisper.node itself does: the package's entry is a native .node file.
      createRequire(import.meta.url)(platformPackage(req.variant));
    } catch (err) {
      // Typically libcudart/libcublas missing: say so instead of running on the CPU unnoticed.
      send({
        type: 'load-failed',
        slot: req.slot,
        problem: 'runtime',
        message: `the ${req.variant.toUpperCase()} build of whisper cannot be loaded on this machine (${(err as Error).message.split('\n')[0]})`,
      });
      return;
    }
  }
  let whisper: WhisperNode;
  try {
    const ns = (await import(WHISPER_PACKAGE)) as Partial<WhisperNode> & { default?: WhisperNode };
    whisper = ns.initWhisper ? (ns as WhisperNode) : ns.default!;
  } catch (err) {
    send({
      type: 'load-failed',
      slot: req.slot,
      problem: 'runtime',
      message: `@fugood/whisper.node cannot be loaded (${(err as Error).message})`,
    });
    return;
  }
  const logs: string[] = [];
  // Error-level lines are reasons even without a telling word ("unknown tensor '…' in model file").
  const errorLines = new Set<string>();
  const listener = whisper.addNativeLogListener((level, text) => {
    logs.push(text.trim());
    if (level === 'error') errorLines.add(text.trim());
  });
  await whisper.toggleNativeLog(true);
  try {
    contexts[req.slot] = await whisper.initWhisper(
      { filePath: req.modelPath, useGpu: req.useGpu },
      req.variant,
    );
  } catch (err) {
    await settleLogs(whisper, listener);
    // whisper.cpp logs the actual reason ("exception during model load: ..."); the exception only says it failed.
    const reasons = logs
      .filter((l) => errorLines.has(l) || /error|fail|invalid|exception/i.test(l))
      .slice(-2);
    const message = [(err as Error).message, ...reasons].join(': ');
    send({ type: 'load-failed', slot: req.slot, problem: 'model', message });
    return;
  }
  await settleLogs(whisper, listener);
  // whisper.cpp names the device it picked ("whisper_backend_init_gpu: using CUDA0 backend") or
  // says it found none; that, not the request, is what we report.
  const gpu = logs.map((l) => /whisper_backend_init_gpu: using (\S+) backend/.exec(l)?.[1]).find(Boolean);
  const failed = logs.find((l) => /failed to initialize \S+ backend|no GPU found/.test(l));
  send({ type: 'loaded', slot: req.slot, gpuDevice: failed ? undefined : gpu, noGpuReason: failed });
}

async function settleLogs(whisper: WhisperNode, listener: { remove: () => void }): Promise<void> {
  // Native log lines come through a thread-safe callback: give the last ones a moment to land.
  await new Promise((resolve) => setTimeout(resolve, 50));
  await whisper.toggleNativeLog(false);
  listener.remove();
}

async function transcribe(req: Extract<HostRequest, { type: 'transcribe' }>): Promise<void> {
  const ctx = contexts[req.slot];
  if (!ctx) return send({ type: 'failed', id: req.id, message: 'no model loaded' });
  const pcm = req.pcm;
  const audio = pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength) as ArrayBuffer;
  try {
    const { promise } = ctx.transcribeData(audio, {
      ...(req.language ? { language: req.language } : {}),
      // One token per segment with its own timestamps; whisper.engine.ts joins tokens into words.
      tokenTimestamps: true,
      maxLen: 1,
      temperature: 0,
      maxThreads: req.threads,
      onProgress: (percent) => send({ type: 'progress', id: req.id, percent }),
    });
    const result = await promise;
    send({ type: 'result', id: req.id, segments: result.segments });
  } catch (err) {
    send({ type: 'failed', id: req.id, message: (err as Error).message });
  }
}

// Requests are handled strictly in order per slot: one context, one transcription at a time.
const queues: Promise<void>[] = [];
process.on('message', (req: HostRequest) => {
  queues[req.slot] = (queues[req.slot] ?? Promise.resolve()).then(() =>
    req.type === 'load' ? load(req) : transcribe(req),
  );
});
// The parent went away (crash, kill -9): nothing is left to serve.
process.on('disconnect', () => process.exit(0));
