/*
 * metrics.c - /metrics and /health over evhttp on the daemon's loop (see metrics.h).
 *
 * The page is read from the counters where they live: stats.c (requests, decisions, latency,
 * connections, reloads), the DNS engine (dns_get_stats, dns_get_server_stats), the checks'
 * own gauges (check_def.report: the dkim check's keys), the queue watcher, and the process
 * (getrusage, /proc/self/statm). Names, units and types follow Prometheus' conventions:
 * counters end in _total, times are seconds, sizes bytes, one HELP and TYPE per family.
 * Nothing here keeps state between scrapes but the HTTP server; evhttp owns the connections
 * (a 10 s timeout, 8 KB of headers, no body).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/metrics.h"

#include "checks/check.h"
#include "policyd/config.h"
#include "policyd/dns/dns.h"
#include "policyd/lib/endpoint.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/queue_watch.h"
#include "policyd/stats.h"
#include "policyd/version.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define METRICS_MAX_SERVERS 16 /* the DNS engine's own bound */

struct metrics {
    struct evhttp *http;
    struct dns *dns;
    struct queue_watch *qw;
    char *unix_path; /* a unix socket we created, removed at the end */
    ino_t unix_ino;
    int stopping;
};

/* --- the text format --- */

/* m_escape - a label value with \, " and newline escaped, into out. Returns out. */
static char *m_escape(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *in && n + 3 < outlen; in++) {
        if (*in == '\\' || *in == '"') {
            out[n++] = '\\';
            out[n++] = *in;
        } else if (*in == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *in;
        }
    }
    out[n] = '\0';
    return out;
}

/* m_family - the HELP and TYPE lines of a metric family. */
static void m_family(struct evbuffer *o, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* m_int - one sample with an integer value; labels "" or 'a="x",b="y"'. */
static void m_int(struct evbuffer *o, const char *name, const char *labels, unsigned long long v)
{
    if (*labels)
        evbuffer_add_printf(o, "%s{%s} %llu\n", name, labels, v);
    else
        evbuffer_add_printf(o, "%s %llu\n", name, v);
}

/* m_num - one sample with a real value. */
static void m_num(struct evbuffer *o, const char *name, const char *labels, double v)
{
    if (*labels)
        evbuffer_add_printf(o, "%s{%s} %.10g\n", name, labels, v);
    else
        evbuffer_add_printf(o, "%s %.10g\n", name, v);
}

/* m_one - a family with a single unlabelled integer sample. */
static void m_one(struct evbuffer *o, const char *name, const char *type, const char *help,
                  unsigned long long v)
{
    m_family(o, name, type, help);
    m_int(o, name, "", v);
}

/* --- the families --- */

static void m_process(struct evbuffer *o)
{
    struct rusage ru;
    struct rlimit rl;
    m_family(o, "policyd_build_info", "gauge", "The version of policyd running (always 1).");
    evbuffer_add_printf(o, "policyd_build_info{version=\"%s\"} 1\n", POLICYD_VERSION);
    m_one(o, "process_start_time_seconds", "gauge",
          "Start time of the process since the Unix epoch in seconds.",
          (unsigned long long)stats.started);
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        m_family(o, "process_cpu_seconds_total", "counter",
                 "Total user and system CPU time spent in seconds.");
        m_num(o, "process_cpu_seconds_total", "",
              (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    }
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long long pages_virt, pages_res;
    if (fp && fscanf(fp, "%llu %llu", &pages_virt, &pages_res) == 2) {
        unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
        m_one(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
              pages_res * page);
        m_one(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
              pages_virt * page);
    }
    if (fp)
        fclose(fp);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        m_one(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
              (unsigned long long)rl.rlim_cur);
}

static void m_requests(struct evbuffer *o)
{
    const struct config *cfg = config_active();
    char labels[256], esc[128];
    m_family(o, "policyd_requests_total", "counter",
             "Policy requests answered, by the kind of answer.");
    const struct {
        const char *reply;
        unsigned long long n;
    } replies[] = {{"dunno", stats.replies_dunno},
                   {"reject", stats.replies_reject},
                   {"defer", stats.replies_defer},
                   {"prepend", stats.replies_prepend},
                   {"other", stats.replies_other}};
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        snprintf(labels, sizeof(labels), "reply=\"%s\"", replies[i].reply);
        m_int(o, "policyd_requests_total", labels, replies[i].n);
    }
    m_family(o, "policyd_decisions_total", "counter",
             "Verdicts of each check: the answer it gave (reject, defer, prepend), or warn for "
             "one it would have given in warn mode.");
    /* every configured check appears, also before its first verdict */
    for (size_t i = 0; cfg && i < cfg->check_count; i++)
        stats_check(cfg->check_defs[i]->name);
    for (unsigned i = 0; i < stats.ncheck; i++) {
        const struct stats_check *c = &stats.checks[i];
        const char *actions[] = {"reject", "defer", "prepend", "warn"};
        unsigned long long n[] = {c->reject, c->defer, c->prepend, c->warn_only};
        for (size_t k = 0; k < 4; k++) {
            snprintf(labels, sizeof(labels), "check=\"%s\",action=\"%s\"",
                     m_escape(c->name, esc, sizeof(esc)), actions[k]);
            m_int(o, "policyd_decisions_total", labels, n[k]);
        }
    }
    m_family(o, "policyd_diagnoses_total", "counter",
             "Diagnosis lines by cause code (policyd-causes(7)), full or short, and the events "
             "counted under a code without a line of their own.");
    {
        unsigned pos = 0;
        const char *code;
        unsigned long long n;
        while (stats_cause_next(&pos, &code, &n)) {
            snprintf(labels, sizeof(labels), "cause_code=\"%s\"", m_escape(code, esc, sizeof(esc)));
            m_int(o, "policyd_diagnoses_total", labels, n);
        }
    }
    m_one(o, "policyd_diagnosis_lines_short_total", "counter",
          "Diagnosis lines logged short: a cause explained lately (diagnosis_repeat_interval).",
          stats.diagnoses_short);
    m_one(o, "policyd_deadline_fallbacks_total", "counter",
          "Requests answered with fallback_action because request_deadline passed.",
          stats.deadline_hits);
    m_family(o, "policyd_bad_requests_total", "counter",
             "Connections closed for a malformed request (protocol) or one past a limit "
             "(max_line_length, max_attributes, max_request_size).");
    m_int(o, "policyd_bad_requests_total", "reason=\"protocol\"", stats.protocol_errors);
    m_int(o, "policyd_bad_requests_total", "reason=\"limit\"", stats.limit_errors);

    /* latency: cumulative buckets */
    const long long *bounds = stats_latency_bounds();
    unsigned long long cum = 0;
    m_family(o, "policyd_request_duration_seconds", "histogram",
             "Time from a policy request read to its answer known.");
    for (size_t i = 0; i < STATS_LATENCY_NBUCKETS; i++) {
        cum += stats.latency_buckets[i];
        snprintf(labels, sizeof(labels), "le=\"%g\"", (double)bounds[i] / 1e6);
        m_int(o, "policyd_request_duration_seconds_bucket", labels, cum);
    }
    cum += stats.latency_buckets[STATS_LATENCY_NBUCKETS];
    m_int(o, "policyd_request_duration_seconds_bucket", "le=\"+Inf\"", cum);
    m_num(o, "policyd_request_duration_seconds_sum", "", (double)stats.latency_sum_us / 1e6);
    m_int(o, "policyd_request_duration_seconds_count", "", cum);

    m_one(o, "policyd_connections_open", "gauge", "Policy connections open now.",
          stats.connections_now);
    m_one(o, "policyd_connections_max", "gauge",
          "max_connections: beyond it new connections wait in the listen queue.",
          cfg ? (unsigned long long)cfg->max_connections : 0);
    m_one(o, "policyd_connections_total", "counter", "Policy connections accepted.",
          stats.connections_total);
}

static void m_config(struct evbuffer *o)
{
    m_family(o, "policyd_config_reloads_total", "counter",
             "Configuration reloads (SIGHUP), by result.");
    m_int(o, "policyd_config_reloads_total", "result=\"success\"", stats.reloads);
    m_int(o, "policyd_config_reloads_total", "result=\"failure\"", stats.reload_failures);
    m_one(o, "policyd_config_last_reload_successful", "gauge",
          "1 if the last reload succeeded (or none was tried), 0 if it was refused.",
          stats.last_reload_failed ? 0 : 1);
    m_one(o, "policyd_config_last_reload_success_timestamp_seconds", "gauge",
          "When the configuration in use was loaded, since the Unix epoch.",
          (unsigned long long)stats.last_reload_ok);
}

static void m_dns(struct evbuffer *o, struct dns *dns)
{
    struct dns_stats s;
    struct dns_server_stats srv[METRICS_MAX_SERVERS];
    char labels[160], esc[128];
    if (!dns)
        return;
    dns_get_stats(dns, &s);
    size_t n = dns_get_server_stats(dns, srv, METRICS_MAX_SERVERS);
    if (n > METRICS_MAX_SERVERS)
        n = METRICS_MAX_SERVERS;
    m_one(o, "policyd_dns_lookups_total", "counter",
          "Lookups asked of the DNS engine (cache hits, merged and sent).", s.lookups);
    m_one(o, "policyd_dns_cache_hits_total", "counter", "Lookups answered from the DNS cache.",
          s.cache_hits);
    m_one(o, "policyd_dns_merged_lookups_total", "counter",
          "Lookups that joined an identical query already in flight.", s.merged);
    m_one(o, "policyd_dns_cache_entries", "gauge", "Answers in the DNS cache.", s.cached);
    m_one(o, "policyd_dns_queries_in_flight", "gauge", "DNS queries waiting for an answer.",
          s.inflight);
    m_family(o, "policyd_dns_lookup_failures_total", "counter",
             "Lookups that ended in a temporary failure after every try, by cause.");
    m_int(o, "policyd_dns_lookup_failures_total", "reason=\"timeout\"", s.timeouts);
    m_int(o, "policyd_dns_lookup_failures_total", "reason=\"servfail\"", s.servfail);
    m_int(o, "policyd_dns_lookup_failures_total", "reason=\"other\"", s.other_errors);
    static const struct {
        const char *name, *type, *help;
    } per[] = {
        {"policyd_dns_queries_total", "counter", "Queries sent to each DNS server (every try)."},
        {"policyd_dns_timeouts_total", "counter", "Tries that timed out, by DNS server."},
        {"policyd_dns_servfails_total", "counter", "SERVFAIL answers, by DNS server."},
        {"policyd_dns_refused_total", "counter",
         "REFUSED answers and refused connections, by DNS server."},
        {"policyd_dns_server_set_aside", "gauge",
         "1 while a DNS server that stopped answering is set aside (tried last)."},
    };
    for (size_t f = 0; f < sizeof(per) / sizeof(per[0]); f++) {
        m_family(o, per[f].name, per[f].type, per[f].help);
        for (size_t i = 0; i < n; i++) {
            unsigned long long v[] = {srv[i].queries, srv[i].timeouts, srv[i].servfails,
                                      srv[i].refused, (unsigned long long)srv[i].set_aside};
            snprintf(labels, sizeof(labels), "server=\"%s\"",
                     m_escape(srv[i].server, esc, sizeof(esc)));
            m_int(o, per[f].name, labels, v[f]);
        }
    }
    m_one(o, "policyd_dns_servers_set_aside", "gauge",
          "DNS servers set aside now after timing out.", s.servers_down);
}

/* The checks' gauges (check_def.report): a family's HELP and TYPE before its first sample. */
struct m_report {
    struct evbuffer *o;
    char last[64];
};

static void m_report_sample(void *arg, const char *name, const char *help, const char *label,
                            const char *value, double number)
{
    struct m_report *r = arg;
    char full[96], labels[256], esc[128];
    snprintf(full, sizeof(full), "policyd_%s", name);
    if (strcmp(r->last, name) != 0) {
        m_family(r->o, full, "gauge", help);
        snprintf(r->last, sizeof(r->last), "%s", name);
    }
    snprintf(labels, sizeof(labels), "%s=\"%s\"", label, m_escape(value, esc, sizeof(esc)));
    m_num(r->o, full, labels, number);
}

static void m_checks(struct evbuffer *o)
{
    const struct config *cfg = config_active();
    struct m_report r = {o, ""};
    for (size_t i = 0; cfg && i < cfg->check_count; i++)
        if (cfg->check_defs[i]->report && cfg->check_states[i])
            cfg->check_defs[i]->report(cfg->check_states[i], m_report_sample, &r);
}

static void m_queue(struct evbuffer *o, struct queue_watch *qw)
{
    struct queue_watch_counts c;
    char labels[96];
    if (!qw)
        return;
    queue_watch_get_counts(qw, &c);
    if (!c.enabled && !c.scanned)
        return;
    m_family(o, "policyd_queue_watch_runs_total", "counter",
             "Rounds of the queue watch (postqueue -j), by result.");
    m_int(o, "policyd_queue_watch_runs_total", "result=\"success\"", c.runs_ok);
    m_int(o, "policyd_queue_watch_runs_total", "result=\"failure\"", c.runs_failed);
    if (!c.scanned)
        return;
    m_one(o, "policyd_queue_watch_last_success_timestamp_seconds", "gauge",
          "When the queue watch last read Postfix's queue, since the Unix epoch.",
          (unsigned long long)c.last_ok);
    m_family(o, "policyd_deferred_messages", "gauge",
             "Messages in Postfix's deferred queue at the last queue watch, by the kind of "
             "reason of their recipients (a message counts once per kind).");
    for (int k = 0; k < DEFERRAL_NKINDS; k++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"",
                 deferral_diagnosis((enum deferral_kind)k)->label);
        m_int(o, "policyd_deferred_messages", labels, c.messages[k]);
    }
    m_family(o, "policyd_deferred_recipients", "gauge",
             "Deferred recipients in Postfix's queue at the last queue watch, by the kind of "
             "reason.");
    for (int k = 0; k < DEFERRAL_NKINDS; k++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"",
                 deferral_diagnosis((enum deferral_kind)k)->label);
        m_int(o, "policyd_deferred_recipients", labels, c.recipients[k]);
    }
}

void metrics_render(const struct metrics *m, struct evbuffer *out)
{
    m_process(out);
    m_requests(out);
    m_config(out);
    m_dns(out, m->dns);
    m_checks(out);
    m_queue(out, m->qw);
}

/* --- HTTP --- */

/* metrics_health - the reason the daemon cannot serve well into why, or "" when it can. */
static void metrics_health(const struct metrics *m, char *why, size_t whylen)
{
    why[0] = '\0';
    if (m->stopping) {
        snprintf(why, whylen, "stopping");
        return;
    }
    if (!config_active()) {
        snprintf(why, whylen, "no configuration loaded");
        return;
    }
    struct dns_stats s;
    dns_get_stats(m->dns, &s);
    if (s.servers_down >= s.servers) {
        struct dns_server_stats srv[METRICS_MAX_SERVERS];
        size_t n = dns_get_server_stats(m->dns, srv, METRICS_MAX_SERVERS), len = 0;
        len += (size_t)snprintf(why, whylen, "no usable DNS server: ");
        for (size_t i = 0; i < n && i < METRICS_MAX_SERVERS && len < whylen; i++)
            len += (size_t)snprintf(why + len, whylen - len, "%s%s", i ? ", " : "", srv[i].server);
        if (len < whylen)
            snprintf(why + len, whylen - len,
                     " set aside after timing out (check dns_servers or /etc/resolv.conf)");
    }
}

static void metrics_request_cb(struct evhttp_request *req, void *arg)
{
    struct metrics *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *body = evbuffer_new();
    if (!body)
        xalloc_fail(0);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    if (path && strcmp(path, "/metrics") == 0) {
        metrics_render(m, body);
        evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, HTTP_OK, "OK", body);
    } else if (path && strcmp(path, "/health") == 0) {
        char why[512];
        metrics_health(m, why, sizeof(why));
        evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
        if (why[0]) {
            evbuffer_add_printf(body, "unhealthy: %s\n", why);
            evhttp_send_reply(req, 503, "Service Unavailable", body);
        } else {
            evbuffer_add_printf(body, "ok\n");
            evhttp_send_reply(req, HTTP_OK, "OK", body);
        }
    } else {
        evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
        evbuffer_add_printf(body, "policyd %s: GET /metrics (Prometheus), GET /health\n",
                            POLICYD_VERSION);
        evhttp_send_reply(req, path && strcmp(path, "/") == 0 ? HTTP_OK : HTTP_NOTFOUND,
                          path && strcmp(path, "/") == 0 ? "OK" : "Not Found", body);
    }
    evbuffer_free(body);
}

/* metrics_bind - a listening socket for spec. -1 with a reason. */
static int metrics_bind(struct metrics *m, const char *spec, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (endpoint_parse(spec, &ss, &sslen, err, errlen) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", spec, strerror(errno));
        return -1;
    }
    int on = 1;
    if (ss.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    int rc = bind(fd, (struct sockaddr *)&ss, sslen);
    if (rc != 0 && errno == EADDRINUSE && ss.ss_family == AF_UNIX) {
        /* a socket file left behind: replaced if nobody accepts on it */
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
        struct stat st;
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (const struct sockaddr *)sun, sslen) == 0;
        if (probe >= 0)
            close(probe);
        if (!live && lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
            unlink(sun->sun_path) == 0)
            rc = bind(fd, (struct sockaddr *)&ss, sslen);
        else
            errno = EADDRINUSE;
    }
    if (rc != 0 || listen(fd, 128) != 0) {
        snprintf(err, errlen, "%s: %s: %s", spec, rc != 0 ? "bind" : "listen", strerror(errno));
        close(fd);
        return -1;
    }
    if (ss.ss_family == AF_UNIX) {
        struct stat st;
        m->unix_path = xstrdup(((struct sockaddr_un *)&ss)->sun_path);
        if (stat(m->unix_path, &st) == 0)
            m->unix_ino = st.st_ino;
    }
    return fd;
}

struct metrics *metrics_new(struct event_base *base, const char *spec, int fd, struct dns *dns,
                            struct queue_watch *qw, char *err, size_t errlen)
{
    struct metrics *m = xcalloc(1, sizeof(*m));
    m->dns = dns;
    m->qw = qw;
    if (!(m->http = evhttp_new(base)))
        xalloc_fail(0);
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_max_headers_size(m->http, 8192);
    evhttp_set_max_body_size(m->http, 0);
    evhttp_set_gencb(m->http, metrics_request_cb, m);
    if (fd < 0 && (fd = metrics_bind(m, spec, err, errlen)) < 0) {
        metrics_free(m);
        return NULL;
    }
    if (!evhttp_accept_socket_with_handle(m->http, fd)) {
        snprintf(err, errlen, "%s: cannot serve HTTP on it", spec);
        close(fd);
        metrics_free(m);
        return NULL;
    }
    return m;
}

void metrics_stopping(struct metrics *m)
{
    if (m)
        m->stopping = 1;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    if (m->http)
        evhttp_free(m->http);
    if (m->unix_path) {
        struct stat st;
        if (stat(m->unix_path, &st) == 0 && st.st_ino == m->unix_ino)
            unlink(m->unix_path);
        free(m->unix_path);
    }
    free(m);
}
