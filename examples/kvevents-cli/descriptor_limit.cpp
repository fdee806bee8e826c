#include "descriptor_limit.h"

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>
#include <sys/resource.h>

namespace kvevents::cli {

void raise_descriptor_limit(spdlog::logger& log) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
        return;
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        log.warn("could not raise the open-file limit from {} to {}: {}", before, limit.rlim_max,
                 std::strerror(errno));
        return;
    }
    log.info("raised the open-file limit from {} to {} (about 5 per publisher)", before,
             limit.rlim_max);
}

}  // namespace kvevents::cli
