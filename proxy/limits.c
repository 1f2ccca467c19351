/* Token buckets in a fixed open-addressing table (FNV-1a of the peer, 8-slot probe window). */
#include "config.h"
#include "proxy/limits.h"

#include "common/vp_buf.h"
#include "common/vp_err.h"

#include <stdlib.h>
#include <string.h>

#define PROBE 8

struct slot {
    char peer[64];
    double tokens;
    int64_t last_us;
};

struct rate_limiter {
    struct slot *slots;
    size_t n;
    double rate, burst;
};

int rate_limiter_new(struct rate_limiter **out, size_t slots, double rate, double burst)
{
    if (slots == 0)
        return VP_ERR_INVALID;
    struct rate_limiter *rl = calloc(1, sizeof *rl);
    if (!rl)
        return VP_ERR_NOMEM;
    rl->slots = calloc(slots, sizeof *rl->slots);
    if (!rl->slots) {
        free(rl);
        return VP_ERR_NOMEM;
    }
    rl->n = slots;
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    *out = rl;
    return 0;
}

void rate_limiter_free(struct rate_limiter *rl)
{
    if (!rl)
        return;
    free(rl->slots);
    free(rl);
}

bool rate_limiter_allow(struct rate_limiter *rl, const char *peer, int64_t now_us)
{
    if (rl->rate <= 0)
        return true;
    char key[64];
    size_t kl = strnlen(peer, sizeof key - 1);
    memcpy(key, peer, kl);
    key[kl] = '\0';
    uint64_t h = vp_fnv1a(key, kl);
    struct slot *victim = NULL;
    struct slot *s = NULL;
    for (size_t k = 0; k < PROBE; k++) {
        struct slot *c = &rl->slots[(h + k) % rl->n];
        if (strcmp(c->peer, key) == 0) {
            s = c;
            break;
        }
        if (!victim || c->peer[0] == '\0' || (victim->peer[0] && c->last_us < victim->last_us))
            victim = c->peer[0] == '\0' && victim && victim->peer[0] == '\0' ? victim : c;
    }
    if (!s) {
        s = victim;
        memcpy(s->peer, key, kl + 1);
        s->tokens = rl->burst;
        s->last_us = now_us;
    }
    double add = (double)(now_us - s->last_us) / 1e6 * rl->rate;
    if (add > 0)
        s->tokens = s->tokens + add > rl->burst ? rl->burst : s->tokens + add;
    s->last_us = now_us;
    if (s->tokens < 1)
        return false;
    s->tokens -= 1;
    return true;
}
