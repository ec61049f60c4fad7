/*  http_dashboard.c - the page mdp-http serves at GET /: http/dashboard.html
    (HTML, CSS and JS written here, nothing fetched from elsewhere), embedded
    in the binary by the assembler at build time.
*/
#include "http.h"

__asm__(".section .rodata\n"
        ".global mdp_http_dashboard_start\n"
        ".hidden mdp_http_dashboard_start\n"
        "mdp_http_dashboard_start:\n"
        ".incbin \"http/dashboard.html\"\n"
        ".global mdp_http_dashboard_end\n"
        ".hidden mdp_http_dashboard_end\n"
        "mdp_http_dashboard_end:\n"
        ".previous\n");
extern const char mdp_http_dashboard_start[], mdp_http_dashboard_end[];

const char *http_dashboard (size_t *size)
{
    *size = (size_t)(mdp_http_dashboard_end - mdp_http_dashboard_start);
    return mdp_http_dashboard_start;
}
