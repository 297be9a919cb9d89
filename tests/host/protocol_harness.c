/*
 * Host harness for protocol/frame.c and protocol/messages.c: runs commands from stdin and prints the
 * results, so tests/test_protocol_c.py can compare the C code with duohil/protocol.py byte for byte.
 * Build twice (the decoder mode is compile-time, as in the firmware):
 *   gcc -std=c11 -Wall -Wextra -Werror -Iprotocol -DFIX_RESYNC=0|1 \
 *       tests/host/protocol_harness.c protocol/frame.c protocol/messages.c -o protocol_harness_N
 *
 * Input, one command per line (HEX is an even number of hex digits, possibly none):
 *   case NAME      start a stream case with a fresh decoder      -> "case NAME"
 *   b HEX          feed these bytes (frame_decoder_feed_buf)     -> "p HEX" per frame delivered
 *   i              idle-line signal (frame_decoder_idle)         -> "p HEX" per frame delivered
 *   end            end of case                                   -> "c frames_ok crc_errors len_errors
 *                                                                    resyncs idle_resets bytes_discarded"
 *   crc HEX        CRC-16/MODBUS of the bytes                    -> "crc XXXX"
 *   frame HEX      frame_encode of the payload                   -> "frame HEX" ("frame -" if refused)
 *   msg HEX        decode by type byte, re-encode on success     -> "msg RC" or "msg 0 F1 F2 ... HEX"
 *   mode                                                         -> "mode FIX_RESYNC"
 * Lines that are empty or start with '#' are ignored. Bad input exits with status 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "messages.h"

#define LINE_MAX_CHARS 65536
#define BUF_MAX        (LINE_MAX_CHARS / 2)

static char line[LINE_MAX_CHARS + 2];
static uint8_t buf[BUF_MAX];
static uint8_t out[FRAME_MAX_SIZE];
static frame_decoder_t dec;

static void die(const char *what, const char *ln)
{
    fprintf(stderr, "protocol_harness: %s: %s\n", what, ln);
    exit(2);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parse HEX (may be empty) into buf; returns the byte count. */
static size_t parse_hex(const char *s)
{
    size_t n = 0;
    while (*s == ' ') s++;
    while (s[0] != '\0') {
        int hi = hexval(s[0]);
        int lo = (s[1] != '\0') ? hexval(s[1]) : -1;
        if (hi < 0 || lo < 0) die("bad hex", s);
        if (n >= BUF_MAX) die("too many bytes", "");
        buf[n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    return n;
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

static void on_frame(void *ctx, const uint8_t *payload, uint8_t len)
{
    (void)ctx;
    printf("p ");
    print_hex(payload, len);
    printf("\n");
}

/* Field values in the order of the Python dataclasses, then the re-encoded payload. */
static void cmd_msg(size_t n)
{
    uint8_t len = (uint8_t)n;
    uint8_t enc = 0;
    int rc;
    if (n > 255) die("msg payload too long", "");
    switch (n ? buf[0] : MSG_SETPOINT) {   /* an empty payload still gets a decoder's verdict */
    case MSG_SETPOINT: {
        setpoint_t m;
        rc = msg_decode_setpoint(buf, len, &m);
        if (rc == MSG_OK) {
            printf("msg 0 %u %ld %u ", m.seq, (long)m.velocity, m.flags);
            enc = msg_encode_setpoint(out, &m);
        }
        break;
    }
    case MSG_PID_PARAMS: {
        pid_params_t m;
        rc = msg_decode_pid_params(buf, len, &m);
        if (rc == MSG_OK) {
            printf("msg 0 %ld %ld %ld ", (long)m.kp, (long)m.ki, (long)m.kd);
            enc = msg_encode_pid_params(out, &m);
        }
        break;
    }
    case MSG_HEARTBEAT: {
        heartbeat_t m;
        rc = msg_decode_heartbeat(buf, len, &m);
        if (rc == MSG_OK) {
            printf("msg 0 %u %lu ", m.seq, (unsigned long)m.uptime_ms);
            enc = msg_encode_heartbeat(out, &m);
        }
        break;
    }
    case MSG_SENSOR_REPORT: {
        sensor_report_t m;
        rc = msg_decode_sensor_report(buf, len, &m);
        if (rc == MSG_OK) {
            printf("msg 0 %u %d %u %lu ", m.id, m.temp, m.status, (unsigned long)m.flags);
            enc = msg_encode_sensor_report(out, &m);
        }
        break;
    }
    case MSG_TELEMETRY: {
        telemetry_t m;
        rc = msg_decode_telemetry(buf, len, &m);
        if (rc == MSG_OK) {
            printf("msg 0 %u %ld %ld %u %u %u %u %u %u %u ", m.seq, (long)m.position, (long)m.velocity,
                   m.state, m.fault_flags, m.last_seq, m.crc_errors, m.rejected, m.stale, m.overruns);
            enc = msg_encode_telemetry(out, &m);
        }
        break;
    }
    default:
        rc = MSG_ERR_TYPE;
        break;
    }
    if (rc != MSG_OK) {
        printf("msg %d\n", rc);
        return;
    }
    print_hex(out, enc);
    printf("\n");
}

int main(void)
{
    frame_decoder_init(&dec);
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t ln = strlen(line);
        if (ln > 0 && line[ln - 1] != '\n' && !feof(stdin)) die("line too long", "");
        while (ln > 0 && (line[ln - 1] == '\n' || line[ln - 1] == '\r' || line[ln - 1] == ' ')) {
            line[--ln] = '\0';
        }
        if (ln == 0 || line[0] == '#') continue;

        if (strncmp(line, "case ", 5) == 0) {
            frame_decoder_init(&dec);
            printf("%s\n", line);
        } else if (strcmp(line, "b") == 0 || strncmp(line, "b ", 2) == 0) {
            size_t n = parse_hex(line + 1);
            frame_decoder_feed_buf(&dec, buf, n, on_frame, NULL);
        } else if (strcmp(line, "i") == 0) {
            frame_decoder_idle(&dec, on_frame, NULL);
        } else if (strcmp(line, "end") == 0) {
            printf("c %lu %lu %lu %lu %lu %lu\n", (unsigned long)dec.frames_ok,
                   (unsigned long)dec.crc_errors, (unsigned long)dec.len_errors,
                   (unsigned long)dec.resyncs, (unsigned long)dec.idle_resets,
                   (unsigned long)dec.bytes_discarded);
        } else if (strncmp(line, "crc", 3) == 0 && (line[3] == ' ' || line[3] == '\0')) {
            size_t n = parse_hex(line + 3);
            printf("crc %04x\n", crc16_modbus(buf, n));
        } else if (strncmp(line, "frame", 5) == 0 && (line[5] == ' ' || line[5] == '\0')) {
            size_t n = parse_hex(line + 5);
            size_t fn = frame_encode(out, sizeof out, buf, n);
            printf("frame ");
            if (fn == 0) printf("-");
            print_hex(out, fn);
            printf("\n");
        } else if (strncmp(line, "msg", 3) == 0 && (line[3] == ' ' || line[3] == '\0')) {
            cmd_msg(parse_hex(line + 3));
        } else if (strcmp(line, "mode") == 0) {
            printf("mode %d\n", FIX_RESYNC);
        } else {
            die("unknown command", line);
        }
    }
    return 0;
}
