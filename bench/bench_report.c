/*  bench_report.c - mdp-bench's output: a table (each mdp figure next to the
    raw relay's from the same invocation, and their ratio), or with --json one
    JSON object that scripts such as bench/run.sh read. Figures that could not
    be measured (an external broker's CPU, say) print as "-" or null.
*/
#include "bench.h"
#include <stdio.h>
#include <stdlib.h>

static const char *s_kind_name (broker_kind_t kind)
{
    return kind == BROKER_MDP ? "mdp" : "raw";
}

static double s_rps (const bench_run_t *run)
{
    return run->seconds > 0 ? (double)run->total.count / run->seconds : 0;
}

//  Broker CPU microseconds per measured request, or -1.
static double s_cpu_us (const bench_run_t *run)
{
    return run->cpu_s >= 0 && run->total.count ? run->cpu_s * 1e6 / (double)run->total.count : -1;
}

static double s_us (uint64_t ns)
{
    return (double)ns / 1000.0;
}

//  Callgrind instructions per request, all threads or the main one, or -1.
static double s_ir_per_request (const bench_opts_t *opts, const bench_run_t *run, bool main)
{
    int64_t ir = main ? run->ir_main : run->ir;
    return ir >= 0 && opts->requests ? (double)ir / (double)opts->requests : -1;
}

static double s_ratio (double a, double b)
{
    return a > 0 && b > 0 ? a / b : -1;
}

//  A number, or null (JSON) when it is negative (not measured).
static void s_num (FILE *out, bool json, const char *format, double value)
{
    if (value >= 0)
        fprintf (out, format, value);
    else
        fprintf (out, "null");
}

//  A table cell: a number, or "-" when it is negative; format is " %W.Pf".
static void s_cell (const char *format, double value)
{
    if (value >= 0) {
        printf (format, value);
        return;
    }
    int width = atoi (format + 2);
    printf (" %*s", width, "-");
}

static void s_json_config (FILE *out, const bench_opts_t *opts)
{
    fprintf (out,
             "\"mode\": \"%s\", \"clients\": %d, \"workers\": %d, \"window\": %d, \"size\": %zu, "
             "\"services\": %d, \"idle_workers\": %d, \"procs\": %s, \"heartbeat_ms\": %d, "
             "\"relay_pipeline\": %s",
             bench_mode_name (opts), opts->clients, opts->workers, bench_window (opts), opts->size,
             opts->services, opts->idle, opts->procs ? "true" : "false", opts->heartbeat,
             opts->pipeline ? "true" : "false");
}

static void s_json_run (FILE *out, const bench_opts_t *opts, const bench_run_t *run)
{
    const bench_result_t *total = &run->total;
    fprintf (out, "\"broker\": \"%s\", \"requests\": %llu, \"errors\": %llu, \"seconds\": %.6f, ",
             s_kind_name (run->kind), (unsigned long long)total->count,
             (unsigned long long)total->errors, run->seconds);
    fprintf (out, "\"rps\": %.1f, \"latency_us\": {\"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f}, ",
             s_rps (run), s_us (bench_hist_percentile (total, 0.50)),
             s_us (bench_hist_percentile (total, 0.99)), s_us (total->max_ns));
    fprintf (out, "\"broker_cpu_s\": ");
    s_num (out, true, "%.6f", run->cpu_s);
    fprintf (out, ", \"broker_cpu_us_per_request\": ");
    s_num (out, true, "%.3f", s_cpu_us (run));
    fprintf (out, ", \"broker_rss_kib\": ");
    s_num (out, true, "%.0f", (double)run->rss_kib);
    fprintf (out, ", \"broker_rss_end_kib\": ");
    s_num (out, true, "%.0f", (double)run->rss_end_kib);
    fprintf (out, ", \"broker_hwm_kib\": ");
    s_num (out, true, "%.0f", (double)run->hwm_kib);
    if (opts->callgrind) {
        fprintf (out,
                 ", \"callgrind\": {\"requests\": %ld, \"ir\": %lld, \"ir_main\": %lld, "
                 "\"ir_per_request\": ",
                 opts->requests, (long long)run->ir, (long long)run->ir_main);
        s_num (out, true, "%.1f", s_ir_per_request (opts, run, false));
        fprintf (out, ", \"ir_main_per_request\": ");
        s_num (out, true, "%.1f", s_ir_per_request (opts, run, true));
        fprintf (out, "}");
    }
}

static void s_json (const bench_opts_t *opts, const bench_run_t *runs[2])
{
    FILE *out = stdout;
    fprintf (out, "{");
    s_json_config (out, opts);
    if (!(runs[0] && runs[1])) {
        fprintf (out, ", ");
        s_json_run (out, opts, runs[0] ? runs[0] : runs[1]);
        fprintf (out, "}\n");
        return;
    }
    for (int i = 0; i < 2; i++) {
        fprintf (out, ", \"%s\": {", s_kind_name (runs[i]->kind));
        s_json_run (out, opts, runs[i]);
        fprintf (out, "}");
    }
    const bench_result_t *a = &runs[0]->total, *b = &runs[1]->total;
    fprintf (out, ", \"ratio\": {\"rps\": ");
    s_num (out, true, "%.3f", s_ratio (s_rps (runs[0]), s_rps (runs[1])));
    fprintf (out, ", \"p50\": ");
    s_num (out, true, "%.3f",
           s_ratio (bench_hist_percentile (a, 0.5), bench_hist_percentile (b, 0.5)));
    fprintf (out, ", \"p99\": ");
    s_num (out, true, "%.3f",
           s_ratio (bench_hist_percentile (a, 0.99), bench_hist_percentile (b, 0.99)));
    fprintf (out, ", \"cpu_per_request\": ");
    s_num (out, true, "%.3f", s_ratio (s_cpu_us (runs[0]), s_cpu_us (runs[1])));
    if (opts->callgrind) {
        for (int main = 0; main < 2; main++) {
            fprintf (out, main ? ", \"ir_main_per_request\": " : ", \"ir_per_request\": ");
            s_num (out, true, "%.3f",
                   s_ratio (s_ir_per_request (opts, runs[0], main),
                            s_ir_per_request (opts, runs[1], main)));
        }
    }
    fprintf (out, "}}\n");
}

static void s_table_row (const bench_opts_t *opts, const bench_run_t *run)
{
    const bench_result_t *total = &run->total;
    printf ("%-7s %9llu %6llu %8.3f %9.0f %8.1f %8.1f %9.1f", s_kind_name (run->kind),
            (unsigned long long)total->count, (unsigned long long)total->errors, run->seconds,
            s_rps (run), s_us (bench_hist_percentile (total, 0.5)),
            s_us (bench_hist_percentile (total, 0.99)), s_us (total->max_ns));
    s_cell (" %8.3f", run->cpu_s);
    s_cell (" %10.2f", s_cpu_us (run));
    s_cell (" %9.0f", (double)run->rss_kib);
    s_cell (" %9.0f", (double)run->hwm_kib);
    if (opts->callgrind) {
        s_cell (" %10.0f", s_ir_per_request (opts, run, false));
        s_cell (" %10.0f", s_ir_per_request (opts, run, true));
    }
    printf ("\n");
}

void bench_report (const bench_opts_t *opts, const bench_run_t *runs[2])
{
    if (opts->json) {
        s_json (opts, runs);
        return;
    }
    printf ("mdp-bench: %s, %d client%s x %d in flight, %d worker%s, %zu-byte payload, "
            "%d service%s, %d idle worker%s, %s\n",
            bench_mode_name (opts), opts->clients, opts->clients > 1 ? "s" : "",
            bench_window (opts), opts->workers, opts->workers > 1 ? "s" : "", opts->size,
            opts->services, opts->services > 1 ? "s" : "", opts->idle, opts->idle == 1 ? "" : "s",
            opts->procs ? "processes" : "threads");
    printf ("%-7s %9s %6s %8s %9s %8s %8s %9s %8s %10s %9s %9s%s\n", "broker", "requests", "errors",
            "seconds", "req/s", "p50 us", "p99 us", "max us", "cpu s", "cpu us/req", "rss KiB",
            "hwm KiB", opts->callgrind ? "     Ir/req main Ir/req" : "");
    //  mdp, raw, then their ratio under the columns where one makes sense
    for (int i = 0; i < 2; i++)
        if (runs[i])
            s_table_row (opts, runs[i]);
    if (runs[0] && runs[1]) {
        const bench_result_t *a = &runs[0]->total, *b = &runs[1]->total;
        printf ("%-7s %9s %6s %8s", "mdp/raw", "", "", "");
        s_cell (" %9.3f", s_ratio (s_rps (runs[0]), s_rps (runs[1])));
        s_cell (" %8.3f", s_ratio (bench_hist_percentile (a, 0.5), bench_hist_percentile (b, 0.5)));
        s_cell (" %8.3f",
                s_ratio (bench_hist_percentile (a, 0.99), bench_hist_percentile (b, 0.99)));
        printf (" %9s %8s", "", "");
        s_cell (" %10.3f", s_ratio (s_cpu_us (runs[0]), s_cpu_us (runs[1])));
        printf (" %9s %9s", "", "");
        for (int main = 0; opts->callgrind && main < 2; main++)
            s_cell (" %10.3f", s_ratio (s_ir_per_request (opts, runs[0], main),
                                        s_ir_per_request (opts, runs[1], main)));
        printf ("\n");
    }
}

void bench_report_queue (const bench_opts_t *opts, const bench_queue_t *queue)
{
    double per =
        (double)(queue->rss_after_kib - queue->rss_before_kib) * 1024.0 / (double)queue->requests;
    double overhead = per - (double)queue->body_bytes;
    if (opts->json) {
        printf ("{\"broker\": \"mdp\", \"size\": %zu, \"queue\": {\"requests\": %ld, "
                "\"rss_before_kib\": %ld, \"rss_after_kib\": %ld, \"bytes_per_request\": %.1f, "
                "\"body_bytes\": %zu, \"overhead_bytes\": %.1f}}\n",
                opts->size, queue->requests, queue->rss_before_kib, queue->rss_after_kib, per,
                queue->body_bytes, overhead);
        return;
    }
    printf ("mdp-bench: %ld requests queued for a service with no worker, %zu-byte payload\n",
            queue->requests, opts->size);
    printf ("broker RSS %ld KiB -> %ld KiB: %.1f bytes per queued request, of which body %zu, "
            "overhead %.1f\n",
            queue->rss_before_kib, queue->rss_after_kib, per, queue->body_bytes, overhead);
}
