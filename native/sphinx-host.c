/*
 * sotto-sphinx-host: one warm PocketSphinx decoder behind a tiny binary protocol on stdin/stdout.
 *
 * Why a helper process and not an in-process addon: a decoder that crashes or loops must harm
 * no other session, and native code inside the server (or a worker thread) can neither be
 * killed nor survive a segfault. A process can. The model is loaded once when the helper
 * starts (~0.8 s); every utterance after that costs only recognition.
 *
 * The recognition loop is the one `pocketsphinx_continuous -infile` runs (2048-sample blocks,
 * an utterance ended whenever PocketSphinx's own voice detector leaves speech), so a chunk
 * through this helper gives the same words as the command line on the same audio.
 *
 * Frames, both directions: 1 byte op, 4 bytes payload length (little-endian), payload.
 * Requests:
 *   'B' begin a stream; payload: empty (the model's initial state, as a fresh process), or a
 *       cepstral-mean state from an earlier 'C' (the caller's own speaker adaptation, carried
 *       between decoders). Reply 'K'.
 *   'A' audio: PCM16 LE mono at the configured rate. No reply.
 *   'P' partial: reply 'H' with the text recognised since the last final.
 *   'F' final: close the open utterance; reply 'W' with one line per word
 *       "word\tstart\tend\tconf\n" (seconds from the stream start), then 'C' with the current
 *       cepstral-mean state (floats: the mean, the running sum, the frame count) so the caller
 *       can carry it to another decoder.
 *   'G' begin a scan: like 'B', but the stream is only listened to, not recognised (a one-word
 *       grammar instead of the language model: ~3 % of recognition's cost). The voice detector
 *       and the cepstral mean run exactly as in recognition, so 'F' on a scan replies 'U' with
 *       where this decoder would end each utterance and the mean at that point: one record per
 *       utterance end, a u32 sample count from the stream start then 2 * n_ceps + 1 floats.
 *       A caller can then cut a long recording at those points and recognise the pieces on
 *       several decoders, each started from its point's mean, with the words one decoder going
 *       through the whole recording would find. Reply 'K', or 'E' when the model has no word
 *       for the grammar (scans are then unavailable; the 'R' reply says whether they are).
 *       'P' during a scan replies 'U' with the records found since the last 'U' (so a caller
 *       can start on the first pieces while the scan goes on); 'F' then replies the rest.
 *   'Q' quit.
 * Any failure: reply 'E' with a message, and the helper exits (the caller starts a new one).
 * Ready: 'R' once the model is loaded, as text: the frame rate, the number of floats in a
 * cepstral-mean state (0 when the model has none), then " scan" when scans are available.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>

#define BLOCK 2048
#define MAX_PAYLOAD (16 * 1024 * 1024)

static ps_decoder_t *ps;
static cmd_ln_t *config;
static int frame_rate = 100;
static int utt_started = 0; /* PocketSphinx's detector has heard speech in this utterance */
static int utt_open = 0;    /* ps_start_utt was called and not yet ended */
static int n_ceps = 0;
/* The cepstral-mean state right after loading (mean, running sum, frame count), restored
 * exactly at every stream start: a fresh process would start from it. */
static float *initial_state = NULL;

/* Scans: a second, trivial search switched in instead of the language model. */
#define SCAN_SEARCH "sotto-scan"
static char *recognise_search = NULL; /* the model's own search, restored after a scan */
static int scan_ready = 0;
static int scanning = 0;
static uint32_t stream_samples = 0;

/* Words of finished sub-utterances since the last 'F'. */
static char *words_buf = NULL;
static size_t words_len = 0, words_cap = 0;

static void die(const char *msg);

static int read_full(void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t r = read(0, p, n);
    if (r == 0) return 0;
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 1;
}

static void write_full(const void *buf, size_t n) {
  const uint8_t *p = buf;
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      exit(3); /* the parent is gone */
    }
    p += w;
    n -= (size_t)w;
  }
}

static void reply(char op, const void *payload, uint32_t len) {
  uint8_t head[5];
  head[0] = (uint8_t)op;
  head[1] = len & 0xff;
  head[2] = (len >> 8) & 0xff;
  head[3] = (len >> 16) & 0xff;
  head[4] = (len >> 24) & 0xff;
  write_full(head, 5);
  if (len) write_full(payload, len);
}

static void die(const char *msg) {
  reply('E', msg, (uint32_t)strlen(msg));
  exit(2);
}

static void append(const char *s, size_t n) {
  if (words_len + n + 1 > words_cap) {
    size_t cap = words_cap ? words_cap * 2 : 4096;
    while (cap < words_len + n + 1) cap *= 2;
    char *next = realloc(words_buf, cap);
    if (!next) die("out of memory");
    words_buf = next;
    words_cap = cap;
  }
  memcpy(words_buf + words_len, s, n);
  words_len += n;
  words_buf[words_len] = 0;
}

/* Fillers (<s>, <sil>, [NOISE], ++GARBAGE++) are left to the caller to drop, as with the CLI. */
static void collect_words(void) {
  char line[512];
  ps_seg_t *it = ps_seg_iter(ps);
  logmath_t *lmath = ps_get_logmath(ps);
  while (it != NULL) {
    int sf, ef;
    ps_seg_frames(it, &sf, &ef);
    int32 post = ps_seg_prob(it, NULL, NULL, NULL);
    double conf = logmath_exp(lmath, post);
    int n = snprintf(line, sizeof line, "%s\t%.3f\t%.3f\t%f\n", ps_seg_word(it), (double)sf / frame_rate,
                     (double)ef / frame_rate, conf);
    if (n > 0 && (size_t)n < sizeof line) append(line, (size_t)n);
    it = ps_seg_next(it);
  }
}

static cmn_t *cmn_state(void);
static void cmn_save(cmn_t *cmn, float *out);

/* A scan's record of one utterance end: where, and the cepstral mean after it. */
static void record_boundary(void) {
  uint8_t rec[4 + (2 * 64 + 1) * sizeof(float)];
  memcpy(rec, &stream_samples, 4); /* little-endian on every platform this builds for */
  size_t n = 4;
  cmn_t *cmn = cmn_state();
  if (cmn && n_ceps) {
    float vec[2 * 64 + 1];
    cmn_save(cmn, vec);
    memcpy(rec + 4, vec, (size_t)(2 * n_ceps + 1) * sizeof(float));
    n += (size_t)(2 * n_ceps + 1) * sizeof(float);
  }
  append((const char *)rec, n);
}

static void end_utterance(void) {
  if (!utt_open) return;
  if (ps_end_utt(ps) < 0) die("ps_end_utt failed");
  utt_open = 0;
  if (utt_started && !scanning) collect_words();
  utt_started = 0;
}

static void start_utterance(void) {
  if (ps_start_utt(ps) < 0) die("ps_start_utt failed");
  utt_open = 1;
  utt_started = 0;
}

static void process(const int16 *pcm, size_t n) {
  while (n > 0) {
    size_t k = n < BLOCK ? n : BLOCK;
    if (!utt_open) start_utterance();
    if (ps_process_raw(ps, pcm, k, FALSE, FALSE) < 0) die("ps_process_raw failed");
    int in_speech = ps_get_in_speech(ps);
    if (in_speech && !utt_started) utt_started = 1;
    stream_samples += (uint32_t)k;
    if (!in_speech && utt_started) {
      end_utterance();
      if (scanning) record_boundary();
      start_utterance();
    }
    pcm += k;
    n -= k;
  }
}

/* State as 2 * n_ceps + 1 floats: mean, sum, frame count. */
static void cmn_save(cmn_t *cmn, float *out) {
  for (int i = 0; i < n_ceps; i++) {
    out[i] = (float)cmn->cmn_mean[i];
    out[n_ceps + i] = (float)cmn->sum[i];
  }
  out[2 * n_ceps] = (float)cmn->nframe;
}

static void cmn_restore(cmn_t *cmn, const float *in) {
  for (int i = 0; i < n_ceps; i++) {
    cmn->cmn_mean[i] = (mfcc_t)in[i];
    cmn->sum[i] = (mfcc_t)in[n_ceps + i];
  }
  cmn->nframe = (int32)in[2 * n_ceps];
}

static cmn_t *cmn_state(void) {
  feat_t *feat = ps_get_feat(ps);
  return feat ? feat->cmn_struct : NULL;
}

int main(int argc, char **argv) {
  err_set_logfp(stderr);
  err_set_debug_level(0);
  config = cmd_ln_parse_r(NULL, ps_args(), argc - 1, argv + 1, TRUE);
  if (config == NULL) die("invalid pocketsphinx arguments");
  ps = ps_init(config);
  if (ps == NULL) die("cannot load the pocketsphinx model");
  frame_rate = cmd_ln_int32_r(config, "-frate");
  cmn_t *cmn = cmn_state();
  if (cmn && cmn->veclen > 64) cmn = NULL; /* no model here has more than 13; never overflow */
  if (cmn) {
    n_ceps = cmn->veclen;
    initial_state = calloc((size_t)(2 * n_ceps + 1), sizeof(float));
    if (!initial_state) die("out of memory");
    cmn_save(cmn, initial_state);
  }
  /* The scan grammar needs one word the dictionary knows; "a" is in every English one. Without
   * it scans are unavailable and callers recognise in the old overlapping way. */
  const char *own = ps_get_search(ps);
  recognise_search = own ? strdup(own) : NULL;
  if (recognise_search &&
      ps_set_jsgf_string(ps, SCAN_SEARCH, "#JSGF V1.0;\ngrammar scan;\npublic <s> = a;\n") == 0 &&
      ps_set_search(ps, recognise_search) == 0)
    scan_ready = 1;
  char ready[48];
  int rn = snprintf(ready, sizeof ready, "%d %d%s", frame_rate, n_ceps ? 2 * n_ceps + 1 : 0,
                    scan_ready ? " scan" : "");
  reply('R', ready, (uint32_t)rn);

  uint8_t *payload = NULL;
  size_t payload_cap = 0;
  for (;;) {
    uint8_t head[5];
    int r = read_full(head, 5);
    if (r <= 0) break;
    uint32_t len = head[1] | (head[2] << 8) | (head[3] << 16) | ((uint32_t)head[4] << 24);
    if (len > MAX_PAYLOAD) die("request too large");
    if (len > payload_cap) {
      uint8_t *next = realloc(payload, len);
      if (!next) die("out of memory");
      payload = next;
      payload_cap = len;
    }
    if (len && read_full(payload, len) <= 0) break;
    switch (head[0]) {
      case 'B':
      case 'G': {
        if (utt_open) {
          ps_end_utt(ps);
          utt_open = 0;
        }
        utt_started = 0;
        words_len = 0;
        stream_samples = 0;
        scanning = head[0] == 'G';
        if (scanning && !scan_ready) die("scans are unavailable with this model");
        if (scan_ready && ps_set_search(ps, scanning ? SCAN_SEARCH : recognise_search) < 0)
          die("cannot switch the search");
        if (cmn) {
          if (len == (uint32_t)(2 * n_ceps + 1) * sizeof(float)) {
            float carried[129];
            memcpy(carried, payload, len);
            cmn_restore(cmn, carried);
          } else {
            cmn_restore(cmn, initial_state);
          }
        }
        if (ps_start_stream(ps) < 0) die("ps_start_stream failed");
        reply('K', NULL, 0);
        break;
      }
      case 'A':
        if (len % 2) die("odd PCM length");
        process((const int16 *)payload, len / 2);
        break;
      case 'P': {
        if (scanning) {
          reply('U', words_buf ? words_buf : "", (uint32_t)words_len);
          words_len = 0;
          break;
        }
        size_t base = words_len;
        if (utt_open && utt_started) {
          int32 score;
          const char *hyp = ps_get_hyp(ps, &score);
          /* Earlier sub-utterances' words are in words_buf as lines; the open one as a text. */
          if (hyp && *hyp) {
            append("~\t", 2);
            append(hyp, strlen(hyp));
            append("\n", 1);
          }
        }
        reply('H', words_buf ? words_buf : "", (uint32_t)words_len);
        words_len = base;
        if (words_buf) words_buf[words_len] = 0;
        break;
      }
      case 'F': {
        end_utterance();
        if (scanning) {
          reply('U', words_buf ? words_buf : "", (uint32_t)words_len);
          words_len = 0;
          break;
        }
        reply('W', words_buf ? words_buf : "", (uint32_t)words_len);
        words_len = 0;
        float vec[129];
        uint32_t nv = 0;
        if (cmn) {
          cmn_save(cmn, vec);
          nv = (uint32_t)(2 * n_ceps + 1);
        }
        reply('C', vec, nv * (uint32_t)sizeof(float));
        break;
      }
      case 'Q':
        goto done;
      default:
        die("unknown request");
    }
  }
done:
  if (utt_open) ps_end_utt(ps);
  ps_free(ps);
  cmd_ln_free_r(config);
  free(payload);
  free(words_buf);
  free(initial_state);
  free(recognise_search);
  return 0;
}
