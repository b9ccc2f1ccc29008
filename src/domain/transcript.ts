/**
 * Transcript shapes shared by the audio pipeline, engines, diarization, storage and exports.
 * Times are seconds from the start of the recording.
 */
export interface Word {
  w: string;
  start: number;
  end: number;
  /** 0..1; engines without confidences report 1. */
  conf: number;
}

/** A stretch of speech attributed to one speaker (diarization output). */
export interface SpeakerTurn {
  /** Stable label within a recording: 'S1', 'S2', … (display names are set by users). */
  speaker: string;
  start: number;
  end: number;
}

/** A stretch of detected speech (VAD output). */
export interface SpeechRegion {
  start: number;
  end: number;
}

export interface Segment {
  id: string;
  speaker: string;
  start: number;
  end: number;
  text: string;
  words: Word[];
}
