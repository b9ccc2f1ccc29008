/**
 * The AudioWorklet of live capture (runs on the audio thread): downmixes each 128-sample render
 * quantum to mono and hands the main thread batches of about 40 ms, so the main thread is woken
 * 25 times a second rather than 375. Loaded by AudioWorklet.addModule from its own hashed file
 * (see capture.ts): the CSP's script-src 'self' allows that, where a blob: or data: URL would not.
 */

// The AudioWorkletGlobalScope is not in TypeScript's DOM library: the little we use, declared.
declare abstract class AudioWorkletProcessor {
  readonly port: MessagePort;
  abstract process(inputs: Float32Array[][], outputs: Float32Array[][]): boolean;
}
declare function registerProcessor(name: string, ctor: new () => AudioWorkletProcessor): void;
declare const sampleRate: number;

export interface WorkletBatch {
  samples: Float32Array;
  /** Peak absolute value of the batch, 0…1, for the level meter. */
  peak: number;
}

class SottoCapture extends AudioWorkletProcessor {
  private readonly size = Math.max(128, Math.round(sampleRate * 0.04));
  private buf = new Float32Array(this.size);
  private used = 0;
  private peak = 0;

  process(inputs: Float32Array[][]): boolean {
    const channels = inputs[0] ?? [];
    const n = channels[0]?.length ?? 0;
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (const ch of channels) sum += ch[i] ?? 0;
      const v = sum / channels.length;
      const a = Math.abs(v);
      if (a > this.peak) this.peak = a;
      this.buf[this.used++] = v;
      if (this.used === this.buf.length) this.flush();
    }
    // Keep running while the source exists, even through silence (no input channels).
    return true;
  }

  private flush(): void {
    const batch: WorkletBatch = { samples: this.buf, peak: this.peak };
    this.port.postMessage(batch, [this.buf.buffer]);
    // Not this.buf.length: the transfer has detached the old buffer (its length is now 0).
    this.buf = new Float32Array(this.size);
    this.used = 0;
    this.peak = 0;
  }
}

registerProcessor('sotto-capture', SottoCapture);
