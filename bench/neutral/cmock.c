/* The neutral mock upstream in C: the same answers as mock.mjs, byte for byte, at a fraction of its cost per frame.
 *
 * Why a second mock: mock.mjs costs 10 to 30 us of CPU per paced frame (a libuv timer wake-up and a JS write per
 * frame), a third of what Relay spends on the frame, so lanes of paced streams measured the mock as much as the
 * proxy (issue 15 asks for a mock at least 10 times cheaper than the proxy on the same lane). This one does per
 * frame only what cannot be avoided: one wake-up (epoll_pwait2's timeout, set to the first due frame) serves
 * every stream due in that millisecond, and each stream's due frames go out in one send() rendered into the
 * connection's reused buffer (no allocation per frame or per request once the buffers have grown).
 *
 * It never drifts from mock.mjs: it loads its frames from a table written by table.mjs out of shapes.mjs (the
 * holes: 1 id, 2 prompt tokens, 3 total tokens, 4 the model's JSON string contents), and serves the same routes,
 * HTTP framing (keep-alive, pipelining, chunked or Content-Length bodies up to 8 MB, 100-continue), schedule
 * (frames due at fixed times from the request's arrival, written up to 1 ms early), ids, errors and stats.
 *
 * Standard C and Linux (epoll, epoll_pwait2: Linux 5.11, glibc 2.35), no library: bench/neutral/server.py compiles it at first use with
 * `gcc -O2 -o cmock cmock.c` into the bench cache.
 *
 * Usage: cmock --table TABLE [--host 127.0.0.1] [--port 0]
 * Prints `neutral mock (c): listening on HOST:PORT` once it accepts. SIGTERM/SIGINT exit at once (status 0). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (8 * 1024 * 1024)
#define MAX_SHAPES 16
#define EARLY 1.0 /* ms a frame may be written before its due time, as mock.mjs does */

enum { D_CHAT, D_CHAT_USAGE, D_RESPONSES, D_ANTHROPIC, D_GEMINI, D_GEMINI_ARRAY, N_DIALECTS };
static const char *DIALECT_NAMES[N_DIALECTS] = {"openai_chat", "openai_chat+usage", "openai_responses",
                                                "anthropic",   "gemini",            "gemini-array"};
/* The stats' dialect (gemini-array counts as gemini, chat+usage as chat). */
static const int STAT_DIALECT[N_DIALECTS] = {0, 0, 1, 2, 3, 3};
static const char *STAT_NAMES[4] = {"openai_chat", "openai_responses", "anthropic", "gemini"};

static const char STREAM_HEAD[] = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
                                  "transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n";
static const char ARRAY_HEAD[] = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n"
                                 "connection: keep-alive\r\n\r\n";

/* ---- the frame table ------------------------------------------------------------------------------------- */

typedef struct {
    const char *lit;
    uint32_t len;
    uint8_t hole; /* the hole after the literal: 1 id, 2 prompt, 3 total, 4 model; 0 after the last */
} Seg;

typedef struct {
    Seg *segs;
    int nsegs;
    size_t litlen;
    int holes[5];
} Tpl;

typedef struct {
    Tpl open, whole, *steps;
    int nsteps, frames, completion;
    const double *due;
} Answer;

static char shape_names[MAX_SHAPES][32];
static double *shape_due[MAX_SHAPES];
static int n_shapes;
static Answer answers[N_DIALECTS][MAX_SHAPES];

static void die(const char *what) {
    fprintf(stderr, "neutral mock (c): %s\n", what);
    exit(2);
}

static void compile(Tpl *t, const char *text, size_t len) {
    int n = 1;
    for (size_t i = 0; i < len; i++) n += text[i] >= 1 && text[i] <= 4;
    t->segs = calloc(n, sizeof(Seg));
    t->nsegs = 0;
    t->litlen = 0;
    memset(t->holes, 0, sizeof t->holes);
    size_t last = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || (text[i] >= 1 && text[i] <= 4)) {
            Seg *s = &t->segs[t->nsegs++];
            s->lit = text + last;
            s->len = (uint32_t)(i - last);
            s->hole = i == len ? 0 : (uint8_t)text[i];
            t->litlen += s->len;
            if (s->hole) t->holes[s->hole]++;
            last = i + 1;
        }
    }
}

static char *table_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open the frame table");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) die("cannot read the frame table");
    fclose(f);
    data[n] = 0;
    *size = (size_t)n;
    return data;
}

/* The next line's start (after '\n'), the line NUL-terminated in place. */
static char *line_end(char *at, char *end) {
    char *nl = memchr(at, '\n', (size_t)(end - at));
    if (!nl) die("truncated frame table");
    *nl = 0;
    return nl + 1;
}

static char *template(Tpl *t, const char *kind, char *at, char *end) {
    char *next = line_end(at, end);
    size_t klen = strlen(kind);
    if (strncmp(at, kind, klen) != 0 || at[klen] != ' ') die("bad template line in the frame table");
    size_t len = strtoul(at + klen + 1, NULL, 10);
    if (next + len + 1 > end) die("truncated frame table");
    compile(t, next, len);
    return next + len + 1;
}

static void table_load(const char *path) {
    size_t size;
    char *at = table_read(path, &size), *end = at + size;
    char *next = line_end(at, end);
    if (strcmp(at, "neutral-table 1") != 0) die("not a neutral-table 1 file");
    at = next;
    while (at < end && strncmp(at, "shape ", 6) == 0) {
        next = line_end(at, end);
        if (n_shapes == MAX_SHAPES) die("too many shapes");
        char *p = at + 6, *space = strchr(p, ' ');
        snprintf(shape_names[n_shapes], sizeof shape_names[0], "%.*s", (int)(space - p), p);
        int n = (int)strtol(space + 1, &p, 10);
        shape_due[n_shapes] = calloc(n, sizeof(double));
        for (int i = 0; i < n; i++) shape_due[n_shapes][i] = strtod(p, &p);
        n_shapes++;
        at = next;
    }
    while (at < end) {
        next = line_end(at, end);
        char dialect[32], shape[32];
        int frames, completion, nsteps, d = -1, s = -1;
        if (sscanf(at, "answer %31s %31s %d %d %d", dialect, shape, &frames, &completion, &nsteps) != 5)
            die("bad answer line in the frame table");
        for (int i = 0; i < N_DIALECTS; i++)
            if (!strcmp(dialect, DIALECT_NAMES[i])) d = i;
        for (int i = 0; i < n_shapes; i++)
            if (!strcmp(shape, shape_names[i])) s = i;
        if (d < 0 || s < 0) die("unknown dialect or shape in the frame table");
        Answer *a = &answers[d][s];
        a->frames = frames;
        a->completion = completion;
        a->nsteps = nsteps;
        a->due = shape_due[s];
        a->steps = calloc(nsteps, sizeof(Tpl));
        at = template(&a->open, "open", next, end);
        for (int i = 0; i < nsteps; i++) at = template(&a->steps[i], "step", at, end);
        at = template(&a->whole, "whole", at, end);
    }
    for (int d = 0; d < N_DIALECTS; d++)
        for (int s = 0; s < n_shapes; s++)
            if (!answers[d][s].steps) die("the frame table lacks an answer");
}

/* ---- buffers --------------------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static void reserve(Buf *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data) die("out of memory");
    b->cap = cap;
}

static void put(Buf *b, const void *data, size_t len) {
    reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void puts_(Buf *b, const char *text) { put(b, text, strlen(text)); }

static void printf_(Buf *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void printf_(Buf *b, const char *format, ...) {
    va_list args;
    for (;;) {
        reserve(b, 64);
        va_start(args, format);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, format, args);
        va_end(args);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        reserve(b, (size_t)n + 1);
    }
}

/* `text` as the contents of a JSON string, as JSON.stringify writes it. */
/* A chunk's size line: `len` in lowercase hex, CRLF. */
static void chunk_line(Buf *b, size_t len) {
    char text[20];
    int at = sizeof text;
    text[--at] = '\n';
    text[--at] = '\r';
    do {
        text[--at] = "0123456789abcdef"[len & 15];
        len >>= 4;
    } while (len);
    put(b, text + at, sizeof text - (size_t)at);
}

static void json_escape(Buf *b, const char *text, size_t len) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(b, e, 2);
        } else if (c < 0x20) {
            const char *named = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                                : c == '\t' ? "\\t" : NULL;
            if (named) {
                puts_(b, named);
            } else {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                put(b, e, 6);
            }
        } else {
            put(b, &text[i], 1);
        }
    }
}

/* ---- state ----------------------------------------------------------------------------------------------- */

static struct {
    unsigned long long requests, streams, frames, bytes, dialects[4];
} stats;

static char RUN[13];
static unsigned long long counter;

typedef struct Conn {
    int fd;
    Buf in;     /* bytes read, not yet answered: from `inoff` */
    size_t inoff;
    Buf out;    /* bytes to write: from `outoff` */
    size_t outoff;
    Buf body;   /* a chunked request's body, joined */
    Buf model;  /* the model, as JSON string contents */
    int closing, continued, waiting_out, peer_closed;
    /* The streamed answer in progress (ans != NULL). */
    const Answer *ans;
    int next, heap_at;
    double start;
    long long due_ms;
    char id[24], prompt[24], total[24];
    int promptlen, totallen;
} Conn;

static int epfd, listen_fd;
static Conn **heap;
static int heap_len, heap_cap;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- the timer: a min-heap of streams by their next due millisecond; epoll_pwait2's timeout wakes the loop
 * when the first is due, and that one wake-up serves every stream due by then (no timer per stream) ---------- */

static void heap_set(int i, Conn *c) {
    heap[i] = c;
    c->heap_at = i;
}

static void heap_up(int i) {
    Conn *c = heap[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (heap[parent]->due_ms <= c->due_ms) break;
        heap_set(i, heap[parent]);
        i = parent;
    }
    heap_set(i, c);
}

static void heap_down(int i) {
    Conn *c = heap[i];
    for (;;) {
        int child = 2 * i + 1;
        if (child >= heap_len) break;
        if (child + 1 < heap_len && heap[child + 1]->due_ms < heap[child]->due_ms) child++;
        if (heap[child]->due_ms >= c->due_ms) break;
        heap_set(i, heap[child]);
        i = child;
    }
    heap_set(i, c);
}

static void heap_remove(Conn *c) {
    int i = c->heap_at;
    c->heap_at = -1;
    Conn *last = heap[--heap_len];
    if (i == heap_len) return;
    heap_set(i, last);
    heap_up(i);
    heap_down(last->heap_at);
}

static void wake(Conn *c, long long due) {
    c->due_ms = due;
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = realloc(heap, (size_t)heap_cap * sizeof(Conn *));
    }
    heap[heap_len++] = c;
    heap_up(heap_len - 1);
}

/* ---- connections ----------------------------------------------------------------------------------------- */

static void conn_close(Conn *c) {
    if (c->heap_at >= 0) heap_remove(c);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    free(c->body.data);
    free(c->model.data);
    free(c);
}

/* Writes what is pending; 0 when the connection was closed. */
static int flush(Conn *c) {
    while (c->outoff < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->outoff, c->out.len - c->outoff, MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->waiting_out) {
                struct epoll_event ev = {.events = (c->peer_closed ? 0 : EPOLLIN) | EPOLLOUT, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                c->waiting_out = 1;
            }
            return 1;
        }
        conn_close(c);
        return 0;
    }
    c->out.len = c->outoff = 0;
    if (c->waiting_out) {
        struct epoll_event ev = {.events = c->peer_closed ? 0 : EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->waiting_out = 0;
    }
    if (c->closing || (c->peer_closed && !c->ans)) {
        conn_close(c);
        return 0;
    }
    return 1;
}

static size_t tpl_len(const Tpl *t, const Conn *c) {
    return t->litlen + t->holes[1] * 24 + t->holes[2] * (size_t)c->promptlen + t->holes[3] * (size_t)c->totallen +
           t->holes[4] * c->model.len;
}

static void render(Buf *b, const Tpl *t, const Conn *c) {
    char *at = b->data + b->len;
    for (int i = 0; i < t->nsegs; i++) {
        const Seg *s = &t->segs[i];
        memcpy(at, s->lit, s->len);
        at += s->len;
        switch (s->hole) {
        case 1: memcpy(at, c->id, 24); at += 24; break;
        case 2: memcpy(at, c->prompt, c->promptlen); at += c->promptlen; break;
        case 3: memcpy(at, c->total, c->totallen); at += c->totallen; break;
        case 4: memcpy(at, c->model.data, c->model.len); at += c->model.len; break;
        }
    }
    b->len = (size_t)(at - b->data);
}

/* Writes the stream's steps due by `now` (with the head when first); 0 when the connection was closed. The
 * answer ends (c->ans NULL) after its last step; its head and opening frames are already in c->out, so the steps
 * due at once leave with them. */
static int step(Conn *c, double now) {
    const Answer *a = c->ans;
    int from = c->next;
    size_t len = 0;
    while (c->next < a->nsteps && c->start + a->due[c->next] <= now) len += tpl_len(&a->steps[c->next++], c);
    int last = c->next >= a->nsteps;
    size_t before = c->out.len;
    reserve(&c->out, len + 32);
    if (len) {
        chunk_line(&c->out, len);
        for (int i = from; i < c->next; i++) render(&c->out, &a->steps[i], c);
        put(&c->out, "\r\n", 2);
    }
    if (last) put(&c->out, "0\r\n\r\n", 5);
    stats.bytes += c->out.len - before;
    if (last) {
        c->ans = NULL;
    } else {
        wake(c, (long long)ceil(c->start + a->due[c->next]));
    }
    return flush(c);
}

static void reply(Conn *c, const char *text, size_t len, int count) {
    if (count) stats.bytes += len;
    put(&c->out, text, len);
}

static void json_head(Buf *b, int status, size_t length) {
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 413 ? "Payload Too Large"
                         : status == 431 ? "Request Header Fields Too Large"
                                         : "Not Implemented";
    printf_(b, "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\nconnection: keep-alive\r\n\r\n",
            status, reason, length);
}

/* An error answer in the dialect's own shape (dialect -1: OpenAI's), as mock.mjs's errorText. */
static void error_text(Buf *out, int dialect, int status, const char *message, size_t mlen) {
    static Buf body;
    body.len = 0;
    if (dialect == D_ANTHROPIC) {
        printf_(&body, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"",
                status == 404 ? "not_found_error" : "invalid_request_error");
        json_escape(&body, message, mlen);
        puts_(&body, "\"}}");
    } else if (dialect == D_GEMINI || dialect == D_GEMINI_ARRAY) {
        printf_(&body, "{\"error\":{\"code\":%d,\"message\":\"", status);
        json_escape(&body, message, mlen);
        printf_(&body, "\",\"status\":\"%s\"}}", status == 404 ? "NOT_FOUND" : "INVALID_ARGUMENT");
    } else {
        puts_(&body, "{\"error\":{\"message\":\"");
        json_escape(&body, message, mlen);
        puts_(&body, "\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
    }
    json_head(out, status, body.len);
    put(out, body.data, body.len);
}

static void error_reply(Conn *c, int dialect, int status, const char *message, size_t mlen) {
    size_t before = c->out.len;
    error_text(&c->out, dialect, status, message, mlen);
    stats.bytes += c->out.len - before;
}

/* Answers with the error and closes: a request the connection cannot go on after. */
static void fail(Conn *c, int status, const char *message) {
    error_text(&c->out, -1, status, message, strlen(message));
    c->closing = 1;
}

/* ---- the request's JSON: validated, with the top level's model, stream and stream_options.include_usage ---- */

typedef struct {
    const char *at, *end;
    int depth;
} Json;

typedef struct {
    int model_kind; /* 0 absent, 1 string, 2 another value */
    const char *model_at;
    size_t model_len; /* a string: its raw contents (escapes undone later); else the value's text */
    int stream, include_usage, is_object;
} Payload;

static void ws(Json *j) {
    while (j->at < j->end && (*j->at == ' ' || *j->at == '\t' || *j->at == '\n' || *j->at == '\r')) j->at++;
}

static int lit(Json *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->at) < n || memcmp(j->at, word, n) != 0) return 0;
    j->at += n;
    return 1;
}

/* A string at j->at (after its opening quote is checked): its contents' span. */
static int string(Json *j, const char **start, size_t *len) {
    if (j->at >= j->end || *j->at != '"') return 0;
    const char *s = ++j->at;
    while (j->at < j->end) {
        unsigned char c = (unsigned char)*j->at;
        if (c == '"') {
            *start = s;
            *len = (size_t)(j->at - s);
            j->at++;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c == '\\') {
            j->at++;
            if (j->at >= j->end) return 0;
            char e = *j->at;
            if (e == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (j->at + i >= j->end || !strchr("0123456789abcdefABCDEF", j->at[i]) || !j->at[i]) return 0;
                j->at += 4;
            } else if (!strchr("\"\\/bfnrt", e) || !e) {
                return 0;
            }
        }
        j->at++;
    }
    return 0;
}

static int number(Json *j) {
    const char *p = j->at;
    if (p < j->end && *p == '-') p++;
    if (p >= j->end) return 0;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (p < j->end && *p >= '0' && *p <= '9') p++;
    else return 0;
    if (p < j->end && *p == '.') {
        p++;
        if (p >= j->end || *p < '0' || *p > '9') return 0;
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9') return 0;
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    j->at = p;
    return 1;
}

/* One value; `level` 1 is the top object's members, 2 stream_options' (what is read from them goes to `out`). */
static int value(Json *j, Payload *out, int level);

static int members(Json *j, Payload *out, int level) {
    j->at++; /* '{' */
    ws(j);
    if (j->at < j->end && *j->at == '}') {
        j->at++;
        return 1;
    }
    for (;;) {
        const char *key;
        size_t klen;
        ws(j);
        if (!string(j, &key, &klen)) return 0;
        ws(j);
        if (j->at >= j->end || *j->at != ':') return 0;
        j->at++;
        ws(j);
        const char *start = j->at;
        int is = 0;
#define KEY(name) (klen == sizeof(name) - 1 && memcmp(key, name, klen) == 0)
        if (level == 1 && KEY("stream_options")) {
            out->include_usage = 0;
            if (j->at < j->end && *j->at == '{') is = 2;
        }
        if (!value(j, out, is)) return 0;
        if (level == 1 && KEY("model")) {
            out->model_kind = *start == '"' ? 1 : 2;
            out->model_at = *start == '"' ? start + 1 : start;
            out->model_len = (size_t)(j->at - start) - (*start == '"' ? 2 : 0);
        } else if (level == 1 && KEY("stream")) {
            out->stream = j->at - start == 4 && memcmp(start, "true", 4) == 0;
        } else if (level == 2 && KEY("include_usage")) {
            out->include_usage = j->at - start == 4 && memcmp(start, "true", 4) == 0;
        }
#undef KEY
        ws(j);
        if (j->at >= j->end) return 0;
        if (*j->at == ',') {
            j->at++;
            continue;
        }
        if (*j->at == '}') {
            j->at++;
            return 1;
        }
        return 0;
    }
}

static int value(Json *j, Payload *out, int level) {
    ws(j);
    if (j->at >= j->end || ++j->depth > 100000) return 0;
    int ok;
    const char *s;
    size_t n;
    switch (*j->at) {
    case '{': ok = members(j, out, level); break;
    case '[':
        j->at++;
        ws(j);
        if (j->at < j->end && *j->at == ']') {
            j->at++;
            ok = 1;
            break;
        }
        for (;;) {
            if (!value(j, out, 0)) {
                ok = 0;
                break;
            }
            ws(j);
            if (j->at < j->end && *j->at == ',') {
                j->at++;
                continue;
            }
            ok = j->at < j->end && *j->at == ']';
            if (ok) j->at++;
            break;
        }
        break;
    case '"': ok = string(j, &s, &n); break;
    case 't': ok = lit(j, "true"); break;
    case 'f': ok = lit(j, "false"); break;
    case 'n': ok = lit(j, "null"); break;
    default: ok = number(j);
    }
    j->depth--;
    return ok;
}

/* 0: not JSON; 1: JSON (out->is_object for an object or an array, both objects to JavaScript). */
static int parse_payload(const char *body, size_t len, Payload *out) {
    memset(out, 0, sizeof *out);
    Json j = {body, body + len, 0};
    ws(&j);
    int top = j.at < j.end ? *j.at : 0;
    if (!value(&j, out, top == '{' ? 1 : 0)) return 0;
    ws(&j);
    if (j.at != j.end) return 0;
    out->is_object = top == '{' || top == '[';
    return 1;
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A JSON string's contents with its escapes undone into `b` (code points above 0x7f as UTF-8). */
static void unescape(Buf *b, const char *s, size_t len) {
    b->len = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch != '\\') {
            put(b, &ch, 1);
            continue;
        }
        char e = s[++i];
        if (e == 'u') {
            unsigned cp = 0;
            for (int k = 1; k <= 4; k++) cp = cp * 16 + (unsigned)hexval(s[i + k]);
            i += 4;
            char u[3];
            if (cp < 0x80) {
                u[0] = (char)cp;
                put(b, u, 1);
            } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63));
                put(b, u, 2);
            } else {
                u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 63)), u[2] = (char)(0x80 | (cp & 63));
                put(b, u, 3);
            }
        } else {
            char plain = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
            put(b, &plain, 1);
        }
    }
}

/* ---- requests -------------------------------------------------------------------------------------------- */

static int prefix(const char *s, size_t len, const char *p) {
    size_t n = strlen(p);
    return len >= n && memcmp(s, p, n) == 0;
}

static int equals(const char *s, size_t len, const char *p) { return len == strlen(p) && memcmp(s, p, len) == 0; }

/* The dialect of a POST path, -1 for none; a Gemini path's model (percent-decoded into `model`) and streaming. */
static int route(const char *path, size_t len, const char *query, size_t qlen, Buf *model, int *streamed) {
    *streamed = -1;
    if (equals(path, len, "/v1/chat/completions") || equals(path, len, "/chat/completions")) return D_CHAT;
    if (equals(path, len, "/v1/responses") || equals(path, len, "/responses")) return D_RESPONSES;
    if (equals(path, len, "/v1/messages") || equals(path, len, "/messages")) return D_ANTHROPIC;
    if (prefix(path, len, "/v1beta/models/")) path += 7, len -= 7;
    else if (prefix(path, len, "/v1/models/")) path += 3, len -= 3;
    if (!prefix(path, len, "/models/")) return -1;
    path += 8, len -= 8;
    const char *colon = memchr(path, ':', len);
    if (!colon || colon == path || memchr(path, '/', (size_t)(colon - path))) return -1;
    const char *method = colon + 1;
    size_t mlen = len - (size_t)(method - path);
    if (equals(method, mlen, "generateContent")) *streamed = 0;
    else if (equals(method, mlen, "streamGenerateContent")) *streamed = 1;
    else return -1;
    model->len = 0;
    for (const char *p = path; p < colon; p++) {
        if (*p == '%' && colon - p > 2 && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            char ch = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            put(model, &ch, 1);
            p += 2;
        } else {
            put(model, p, 1);
        }
    }
    if (!*streamed) return D_GEMINI;
    /* alt=sse as one of the query's &-separated parts: SSE, else a JSON array. */
    for (const char *p = query; p < query + qlen;) {
        const char *amp = memchr(p, '&', (size_t)(query + qlen - p));
        size_t n = amp ? (size_t)(amp - p) : (size_t)(query + qlen - p);
        if (equals(p, n, "alt=sse")) return D_GEMINI;
        p += n + 1;
    }
    return D_GEMINI_ARRAY;
}

static void next_id(char *id) {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    counter++;
    memcpy(id, RUN, 12);
    unsigned long long n = counter;
    for (int i = 23; i >= 12; i--) {
        id[i] = digits[n % 36];
        n /= 36;
    }
}

static void stats_reply(Conn *c) {
    static Buf text, all;
    text.len = all.len = 0;
    printf_(&text, "{\"requests\":%llu,\"streams\":%llu,\"frames\":%llu,\"bytes\":%llu,\"dialects\":{", stats.requests,
            stats.streams, stats.frames, stats.bytes);
    for (int i = 0; i < 4; i++) printf_(&text, "%s\"%s\":%llu", i ? "," : "", STAT_NAMES[i], stats.dialects[i]);
    puts_(&text, "}}");
    json_head(&all, 200, text.len);
    put(&all, text.data, text.len);
    reply(c, all.data, all.len, 1);
}

static void models_reply(Conn *c) {
    static Buf text, all;
    text.len = all.len = 0;
    puts_(&text, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n_shapes; i++)
        printf_(&text, "%s{\"id\":\"bench-%s\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"neutral-mock\"}",
                i ? "," : "", shape_names[i]);
    puts_(&text, "]}");
    json_head(&all, 200, text.len);
    put(&all, text.data, text.len);
    reply(c, all.data, all.len, 1);
}

/* The shape named by the model's first `bench-<shape>`, -1 for none. */
static int model_shape(const char *model, size_t len) {
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)model[i] < 0x21 || (unsigned char)model[i] > 0x7e) return -1;
    for (const char *p = model; (p = memmem(p, len - (size_t)(p - model), "bench-", 6)); p++) {
        for (int s = 0; s < n_shapes; s++) {
            size_t n = strlen(shape_names[s]);
            if ((size_t)(model + len - (p + 6)) >= n && memcmp(p + 6, shape_names[s], n) == 0) return s;
        }
    }
    return -1;
}

static void answer(Conn *c, const char *method, size_t mlen, const char *path, size_t plen, const char *query,
                   size_t qlen, const char *body, size_t blen) {
    if (equals(method, mlen, "GET") && equals(path, plen, "/_neutral/stats")) return stats_reply(c);
    if (equals(method, mlen, "GET") && (equals(path, plen, "/v1/models") || equals(path, plen, "/models")))
        return models_reply(c);
    static Buf text, model;
    int streamed, dialect = equals(method, mlen, "POST") ? route(path, plen, query, qlen, &model, &streamed) : -1;
    text.len = 0;
    if (dialect < 0) {
        printf_(&text, "no route for %.*s %.*s", (int)mlen, method, (int)plen, path);
        return error_reply(c, -1, 404, text.data, text.len);
    }
    stats.requests++;
    stats.dialects[STAT_DIALECT[dialect]]++;
    Payload p;
    if (!parse_payload(body, blen, &p)) return error_reply(c, dialect, 400, "the body is not JSON", 20);
    if (!p.is_object) return error_reply(c, dialect, 400, "the body is not an object", 25);
    int model_is_string = 1;
    if (streamed < 0) {
        streamed = p.stream;
        if (p.model_kind == 1) unescape(&model, p.model_at, p.model_len);
        else model_is_string = 0;
    }
    int shape = model_is_string ? model_shape(model.data, model.len) : -1;
    if (shape < 0) {
        puts_(&text, "unknown model ");
        if (model_is_string) {
            puts_(&text, "\"");
            json_escape(&text, model.data, model.len);
            puts_(&text, "\"");
        } else if (p.model_kind == 2) {
            put(&text, p.model_at, p.model_len);
        } else {
            puts_(&text, "undefined");
        }
        puts_(&text, ": the neutral mock serves ");
        for (int s = 0; s < n_shapes; s++) printf_(&text, "%sbench-%s", s ? ", " : "", shape_names[s]);
        return error_reply(c, dialect, 404, text.data, text.len);
    }
    if (dialect == D_CHAT && p.include_usage) dialect = D_CHAT_USAGE;
    const Answer *a = &answers[dialect][shape];
    c->model.len = 0;
    json_escape(&c->model, model.data, model.len);
    next_id(c->id);
    long long prompt = (long long)(blen + 3) / 4;
    if (prompt < 1) prompt = 1;
    c->promptlen = snprintf(c->prompt, sizeof c->prompt, "%lld", prompt);
    c->totallen = snprintf(c->total, sizeof c->total, "%lld", prompt + a->completion);
    if (!streamed) {
        size_t len = tpl_len(&a->whole, c), before = c->out.len;
        json_head(&c->out, 200, len);
        reserve(&c->out, len);
        render(&c->out, &a->whole, c);
        stats.bytes += c->out.len - before;
        return;
    }
    stats.streams++;
    stats.frames += (unsigned long long)a->frames;
    c->ans = a;
    c->next = 0;
    c->start = now_ms();
    size_t before = c->out.len;
    put(&c->out, dialect == D_GEMINI_ARRAY ? ARRAY_HEAD : STREAM_HEAD,
        dialect == D_GEMINI_ARRAY ? sizeof ARRAY_HEAD - 1 : sizeof STREAM_HEAD - 1);
    size_t olen = tpl_len(&a->open, c);
    if (olen) {
        chunk_line(&c->out, olen);
        reserve(&c->out, olen + 2);
        render(&c->out, &a->open, c);
        put(&c->out, "\r\n", 2);
    }
    stats.bytes += c->out.len - before;
}

/* A chunked body from `at`: 1 done (body in c->body, *after set), 0 incomplete, -1 bad, -2 too large. */
static int dechunk(Conn *c, const char *at, const char *end, const char **after) {
    c->body.len = 0;
    for (;;) {
        const char *line = memmem(at, (size_t)(end - at), "\r\n", 2);
        if (!line) return 0;
        const char *p = at;
        while (p < line && (*p == ' ' || *p == '\t')) p++;
        long long n = 0;
        int digits = 0;
        while (p < line && hexval(*p) >= 0 && n < (1LL << 40)) n = n * 16 + hexval(*p++), digits++;
        if (!digits) return -1;
        if (c->body.len + (unsigned long long)n > MAX_BODY) return -2;
        if (n == 0) {
            const char *close = memmem(line + 2, (size_t)(end - line - 2), "\r\n", 2);
            if (!close) return 0;
            *after = close + 2;
            return 1;
        }
        if (end - (line + 2) < n + 2) return 0;
        put(&c->body, line + 2, (size_t)n);
        at = line + 2 + n + 2;
    }
}

static void continue_once(Conn *c, int expect) {
    if (expect && !c->continued) {
        c->continued = 1;
        put(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
}

static int trimmed(const char **s, const char *end) {
    while (*s < end && (**s == ' ' || **s == '\t')) (*s)++;
    const char *e = end;
    while (e > *s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    return (int)(e - *s);
}

/* Answers every complete request buffered, stopping at a streamed one until it ends; then writes. 0 when the
 * connection was closed. */
static int serve(Conn *c) {
    while (!c->ans && !c->closing) {
        const char *buf = c->in.data + c->inoff, *end = c->in.data + c->in.len;
        const char *headend = memmem(buf, (size_t)(end - buf), "\r\n\r\n", 4);
        if (!headend) {
            if (end - buf > MAX_HEAD) fail(c, 431, "request head too large");
            break;
        }
        const char *line = memmem(buf, (size_t)(headend + 2 - buf), "\r\n", 2);
        const char *sp = memchr(buf, ' ', (size_t)(line - buf));
        const char *method = buf, *target = "/";
        size_t mlen = sp ? (size_t)(sp - buf) : (size_t)(line - buf), tlen = 1;
        if (sp) {
            target = sp + 1;
            const char *sp2 = memchr(target, ' ', (size_t)(line - target));
            tlen = (size_t)((sp2 ? sp2 : line) - target);
        }
        long long length = 0;
        int chunked = 0, expect = 0, bad_length = 0;
        for (const char *h = line + 2; h < headend + 2;) {
            const char *e = memmem(h, (size_t)(headend + 2 - h), "\r\n", 2);
            const char *colon = memchr(h, ':', (size_t)(e - h));
            if (colon) {
                const char *name = h, *val = colon + 1;
                int nlen = trimmed(&name, colon), vlen = trimmed(&val, e);
                if (nlen == 14 && !strncasecmp(name, "content-length", 14)) {
                    char tmp[32], *stop;
                    if (vlen > 30) bad_length = 1;
                    else {
                        memcpy(tmp, val, (size_t)vlen);
                        tmp[vlen] = 0;
                        length = vlen ? strtoll(tmp, &stop, 10) : 0;
                        if (vlen && *stop) bad_length = 1;
                    }
                } else if (nlen == 17 && !strncasecmp(name, "transfer-encoding", 17)) {
                    chunked = 0;
                    for (int i = 0; i + 7 <= vlen; i++)
                        if (!strncasecmp(val + i, "chunked", 7)) chunked = 1;
                } else if (nlen == 6 && !strncasecmp(name, "expect", 6)) {
                    expect = vlen == 12 && !strncasecmp(val, "100-continue", 12);
                }
            }
            h = e + 2;
        }
        const char *body, *after;
        size_t blen;
        if (chunked) {
            int got = dechunk(c, headend + 4, end, &after);
            if (got == -1) {
                fail(c, 400, "bad chunked body");
                break;
            }
            if (got == -2) {
                fail(c, 413, "body too large");
                break;
            }
            if (got == 0) {
                continue_once(c, expect);
                break;
            }
            body = c->body.data ? c->body.data : "";
            blen = c->body.len;
        } else {
            if (bad_length || length < 0) {
                fail(c, 400, "bad content-length");
                break;
            }
            if (length > MAX_BODY) {
                fail(c, 413, "body too large");
                break;
            }
            if (end - (headend + 4) < length) {
                continue_once(c, expect);
                break;
            }
            body = headend + 4;
            blen = (size_t)length;
            after = body + blen;
        }
        c->continued = 0;
        const char *q = memchr(target, '?', tlen);
        size_t plen = q ? (size_t)(q - target) : tlen;
        answer(c, method, mlen, target, plen, q ? q + 1 : "", q ? tlen - plen - 1 : 0, body, blen);
        c->inoff = (size_t)(after - c->in.data);
        if (c->ans) {
            /* The steps due at once go out with the head, in one write. */
            if (!step(c, c->start)) return 0;
        }
    }
    if (c->inoff == c->in.len) c->in.len = c->inoff = 0;
    return flush(c);
}

static void on_readable(Conn *c) {
    for (;;) {
        if (c->inoff > 0 && c->inoff * 2 >= c->in.len) {
            memmove(c->in.data, c->in.data + c->inoff, c->in.len - c->inoff);
            c->in.len -= c->inoff;
            c->inoff = 0;
        }
        static char scratch[65536];
        ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
        if (n > 0) {
            put(&c->in, scratch, (size_t)n);
            if (c->in.len - c->inoff > 2 * (MAX_BODY + MAX_HEAD)) return conn_close(c);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0) return conn_close(c);
        /* The peer's end of the connection: what it sent is answered (a stream runs to its end), then it closes. */
        c->peer_closed = 1;
        struct epoll_event ev = {.events = c->waiting_out ? EPOLLOUT : 0, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        break;
    }
    if (!c->ans) serve(c);
}

/* Writes the steps of every stream due by now (and those due within EARLY ms: written now rather than after one
 * more wake-up, as mock.mjs does). */
static void on_timer(void) {
    double now = now_ms() + EARLY;
    while (heap_len && heap[0]->due_ms <= now) {
        Conn *c = heap[0];
        heap_remove(c);
        if (step(c, now) && !c->ans) serve(c);
    }
}

static void on_accept(void) {
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        c->heap_at = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void quit(int signal) {
    (void)signal;
    _exit(0);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *table = NULL;
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--table")) table = argv[i + 1];
    }
    if (!table) die("usage: cmock --table TABLE [--host 127.0.0.1] [--port 0]");
    table_load(table);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, quit);
    signal(SIGINT, quit);

    FILE *urandom = fopen("/dev/urandom", "rb");
    unsigned char raw[6];
    if (!urandom || fread(raw, 1, 6, urandom) != 6) die("cannot read /dev/urandom");
    fclose(urandom);
    for (int i = 0; i < 6; i++) snprintf(RUN + 2 * i, 3, "%02x", raw[i]);

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(listen_fd, 8192) < 0) {
        fprintf(stderr, "neutral mock (c): cannot listen on %s:%d: %s\n", host, port, strerror(errno));
        return 2;
    }
    socklen_t alen = sizeof addr;
    getsockname(listen_fd, (struct sockaddr *)&addr, &alen);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    static int listen_tag;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev);
    printf("neutral mock (c): listening on %s:%d\n", host, ntohs(addr.sin_port));
    fflush(stdout);

    struct epoll_event events[256];
    for (;;) {
        struct timespec wait, *timeout = NULL;
        if (heap_len) {
            double left = (double)heap[0]->due_ms - now_ms();
            if (left < 0) left = 0;
            wait.tv_sec = (time_t)(left / 1e3);
            wait.tv_nsec = (long)((left - (double)wait.tv_sec * 1e3) * 1e6);
            timeout = &wait;
        }
        int n = epoll_pwait2(epfd, events, 256, timeout, NULL);
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &listen_tag) {
                on_accept();
                continue;
            }
            Conn *c = tag;
            if (events[i].events & EPOLLOUT) {
                if (!flush(c)) continue;
                if (!c->ans && !c->closing && !serve(c)) continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        }
        if (heap_len && heap[0]->due_ms <= now_ms()) on_timer();
    }
}
