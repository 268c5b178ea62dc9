/*
 * libstrophe (the C library behind the Profanity client) against Meerkat: XEP-0198 resumption
 * while messages flow. Driven by test/interop/libstrophe.test.ts, which builds this file, runs
 * a TCP proxy in front of the server and cuts alice's connection whenever this program prints
 * "cut". Alice connects through the proxy, bob directly; both send N numbered chat messages to
 * the other, bob alternately to alice's full and bare JID. When libstrophe reports alice's
 * connection lost, the same connection object connects again, which makes libstrophe send
 * <resume/> with the session it had enabled.
 *
 * Stdout, one line each: "cut" (cut alice's connection now), then "result" followed by
 * key=value pairs. Stderr: libstrophe's log of every stanza sent and received.
 *
 * usage: libstrophe_resume ALICE_JID BOB_JID PASSWORD ALICE_PORT BOB_PORT N CUTS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <strophe.h>

#define MAX_N 10000

typedef struct {
    const char *name;
    xmpp_conn_t *conn;
    int port;
    int connects, disconnects, resumed, enabled;
    int ready;            /* may send: SM enabled (or resumed) and presence sent */
    int down;             /* lost, to be connected again */
    double down_at;
    int sent;
    int received[MAX_N + 1];
    int unexpected, errors;
    char first_jid[256];
} account_t;

static account_t alice = { .name = "alice" }, bob = { .name = "bob" };
static int n_messages, n_cuts, cuts_done, finishing;

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static void send_text(account_t *a, const char *xml)
{
    xmpp_stanza_t *stanza = xmpp_stanza_new_from_string(xmpp_conn_get_context(a->conn), xml);
    if (stanza == NULL) {
        fprintf(stderr, "cannot build stanza: %s\n", xml);
        exit(3);
    }
    xmpp_send(a->conn, stanza);
    xmpp_stanza_release(stanza);
}

/* The self-signed test certificate is accepted. */
static int accept_certificate(const xmpp_tlscert_t *cert, const char *const error)
{
    (void)cert;
    (void)error;
    return 1;
}

static void on_connection(xmpp_conn_t *conn, xmpp_conn_event_t event, int error, xmpp_stream_error_t *stream_error, void *userdata)
{
    account_t *a = userdata;
    (void)error;
    (void)stream_error;
    if (event == XMPP_CONN_CONNECT) {
        const char *jid = xmpp_conn_get_bound_jid(conn);
        if (++a->connects == 1) {
            snprintf(a->first_jid, sizeof a->first_jid, "%s", jid);
        } else if (strcmp(a->first_jid, jid) == 0) {
            /* libstrophe keeps <resumed/> to itself: the session is back under the same full JID. */
            a->resumed++;
            a->ready = 1;
        }
        return;
    }
    a->ready = 0;
    a->disconnects++;
    if (!finishing) {
        a->down = 1;
        a->down_at = now();
    }
}

static int on_sm(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    account_t *a = userdata;
    (void)conn;
    if (strcmp(xmpp_stanza_get_name(stanza), "enabled") == 0) {
        a->enabled++;
        if (a->enabled == 1) send_text(a, "<presence/>");
        a->ready = 1;
    }
    return 1;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    account_t *a = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    xmpp_stanza_t *body = xmpp_stanza_get_child_by_name(stanza, "body");
    (void)conn;
    if (type != NULL && strcmp(type, "error") == 0) {
        a->errors++;
        return 1;
    }
    if (body == NULL) return 1;
    char *text = xmpp_stanza_get_text(body);
    int n = 0;
    if (text != NULL && sscanf(text, "msg %d", &n) == 1 && n >= 1 && n <= n_messages) a->received[n]++;
    else a->unexpected++;
    if (text != NULL) xmpp_free(xmpp_stanza_get_context(stanza), text);
    return 1;
}

static int both_ready(void)
{
    return alice.connects > 0 && bob.connects > 0 && alice.enabled > 0 && bob.enabled > 0;
}

static int tick(xmpp_ctx_t *ctx, void *userdata)
{
    char xml[512];
    (void)ctx;
    (void)userdata;
    if (alice.down && now() - alice.down_at > 0.2) {
        alice.down = 0;
        xmpp_connect_client(alice.conn, "127.0.0.1", alice.port, on_connection, &alice);
    }
    if (!both_ready()) return 1;
    if (bob.ready && bob.sent < n_messages) {
        bob.sent++;
        char bare[256];
        snprintf(bare, sizeof bare, "%s", alice.first_jid);
        *strchr(bare, '/') = '\0';
        snprintf(xml, sizeof xml, "<message type='chat' to='%s' id='b%d'><body>msg %d</body></message>",
                 bob.sent % 2 ? alice.first_jid : bare, bob.sent, bob.sent);
        send_text(&bob, xml);
        if (cuts_done < n_cuts && bob.sent == n_messages * (cuts_done + 1) / (n_cuts + 1)) {
            cuts_done++;
            printf("cut\n");
            fflush(stdout);
            /* libstrophe 0.12 drops what is still queued unsent when a connection is made again,
             * so alice sends nothing more until she is back. */
            alice.ready = 0;
            return 1;
        }
    }
    if (alice.ready && alice.sent < n_messages) {
        alice.sent++;
        snprintf(xml, sizeof xml, "<message type='chat' to='%s' id='a%d'><body>msg %d</body></message>",
                 xmpp_conn_get_jid(bob.conn), alice.sent, alice.sent);
        send_text(&alice, xml);
    }
    return 1;
}

static void start(xmpp_ctx_t *ctx, account_t *a, const char *jid, const char *password, int port)
{
    a->conn = xmpp_conn_new(ctx);
    a->port = port;
    xmpp_conn_set_flags(a->conn, XMPP_CONN_FLAG_MANDATORY_TLS);
    xmpp_conn_set_certfail_handler(a->conn, accept_certificate);
    xmpp_conn_set_jid(a->conn, jid);
    xmpp_conn_set_pass(a->conn, password);
    xmpp_handler_add(a->conn, on_sm, "urn:xmpp:sm:3", NULL, NULL, a);
    xmpp_handler_add(a->conn, on_message, NULL, "message", NULL, a);
    xmpp_connect_client(a->conn, "127.0.0.1", port, on_connection, a);
}

static int everything_received(void)
{
    for (int i = 1; i <= n_messages; i++)
        if (alice.received[i] == 0 || bob.received[i] == 0) return 0;
    return 1;
}

static void report(account_t *a)
{
    int missing = 0, duplicated = 0;
    for (int i = 1; i <= n_messages; i++) {
        if (a->received[i] == 0) missing++;
        if (a->received[i] > 1) duplicated++;
    }
    printf(" %s_sent=%d %s_missing=%d %s_duplicated=%d %s_unexpected=%d %s_errors=%d %s_resumed=%d %s_enabled=%d %s_disconnects=%d",
           a->name, a->sent, a->name, missing, a->name, duplicated, a->name, a->unexpected, a->name, a->errors,
           a->name, a->resumed, a->name, a->enabled, a->name, a->disconnects);
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: libstrophe_resume ALICE_JID BOB_JID PASSWORD ALICE_PORT BOB_PORT N CUTS\n");
        return 2;
    }
    n_messages = atoi(argv[6]);
    n_cuts = atoi(argv[7]);
    if (n_messages < 1 || n_messages > MAX_N) return 2;
    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, xmpp_get_default_logger(XMPP_LEVEL_DEBUG));
    start(ctx, &bob, argv[2], argv[3], atoi(argv[5]));
    start(ctx, &alice, argv[1], argv[3], atoi(argv[4]));
    xmpp_global_timed_handler_add(ctx, tick, 10, NULL);

    double deadline = now() + 60;
    while (now() < deadline && !(everything_received() && alice.sent == n_messages && bob.sent == n_messages))
        xmpp_run_once(ctx, 10);
    /* Anything delivered twice would come now. */
    for (double settle = now() + 1; now() < settle;) xmpp_run_once(ctx, 10);

    printf("result");
    report(&alice);
    report(&bob);
    printf("\n");
    fflush(stdout);
    finishing = 1;
    xmpp_disconnect(alice.conn);
    xmpp_disconnect(bob.conn);
    for (double end = now() + 1; now() < end;) xmpp_run_once(ctx, 10);
    xmpp_conn_release(alice.conn);
    xmpp_conn_release(bob.conn);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}
