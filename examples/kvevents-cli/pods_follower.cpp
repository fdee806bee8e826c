#include "pods_follower.h"

#include <ostream>
#include <stdexcept>
#include <utility>

namespace kvevents::cli {

PodsFollower::PodsFollower(Fleet& fleet, std::string path, ClientOptions base, std::ostream& err)
    : fleet_(fleet), path_(std::move(path)), base_(std::move(base)), err_(err) {}

void PodsFollower::load() {
    stamp_ = stamp_of(path_);
    apply(read_pods_file(path_));
}

void PodsFollower::reload() {
    stamp_ = stamp_of(path_);
    try {
        apply(read_pods_file(path_));
    } catch (const std::runtime_error& e) {
        say(std::string(e.what()) + "; still following " + std::to_string(followed_.size()) +
            " pod(s)");
    }
}

// One write per line: the fleet's loops log to the same stream, and a line written in pieces
// could be cut by theirs.
void PodsFollower::say(const std::string& line) {
    err_ << ("kvevents-cli subscribe: " + line + '\n') << std::flush;
}

void PodsFollower::reload_if_changed() {
    if (stamp_of(path_) != stamp_)
        reload();
}

void PodsFollower::apply(const PodsFile& file) {
    for (const std::string& error : file.errors) say(error);
    std::set<std::string> now_followed;
    std::size_t added = 0;
    std::size_t replaced = 0;
    for (const PodEntry& e : file.pods) {
        ClientOptions o = base_;
        o.pod_key = e.pod;
        o.model_name = e.model;
        o.pod_ip = e.pod_ip;
        o.endpoint = e.endpoint;
        o.replay_endpoint = e.replay;
        try {
            for (const AddOutcome outcome : fleet_.add_pod(o, e.dp_size)) {
                added += outcome == AddOutcome::kAdded ? 1U : 0U;
                replaced += outcome == AddOutcome::kReplaced ? 1U : 0U;
            }
            now_followed.insert(e.pod);
        } catch (const std::exception& err) {
            say(path_ + ':' + std::to_string(e.line) + ": " + err.what());
            // Refused settings leave the pod as it was (followed with its old ones, if any).
            if (followed_.count(e.pod) != 0)
                now_followed.insert(e.pod);
        }
    }
    // While the file has bad lines, a pod missing from it may be on one of them (a line being
    // edited): it is kept until the file reads cleanly.
    std::size_t removed = 0;
    for (const std::string& pod : followed_) {
        if (now_followed.count(pod) != 0)
            continue;
        if (file.errors.empty()) {
            removed += fleet_.remove_pod(pod);
        } else {
            now_followed.insert(pod);
        }
    }
    followed_ = std::move(now_followed);
    say(path_ + ": following " + std::to_string(followed_.size()) + " pod(s); publishers added " +
        std::to_string(added) + ", replaced " + std::to_string(replaced) + ", removed " +
        std::to_string(removed));
}

}  // namespace kvevents::cli
