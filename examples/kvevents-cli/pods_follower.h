#pragma once

// Keeps a Fleet following the pods a pods file lists: read at start, again on SIGHUP and when
// the file changes. Pods added to the file are added, changed ones replaced, removed ones
// removed; a bad line is reported with its number and the others keep running (while any line
// is bad, no pod is removed: the bad line may be one being edited).

#include <iosfwd>
#include <optional>
#include <set>
#include <string>

#include <kvevents/client_options.h>
#include <kvevents/fleet.h>

#include "pods_file.h"

namespace kvevents::cli {

class PodsFollower {
public:
    /// `base` gives every setting the file does not (replay, topic, timeouts, logger).
    PodsFollower(Fleet& fleet, std::string path, ClientOptions base, std::ostream& err);

    /// The first read: throws std::runtime_error when the file cannot be read.
    void load();
    /// Reads the file again (SIGHUP); if it cannot be read, says so and keeps the pods followed.
    void reload();
    /// Reads the file again if it changed since the last read.
    void reload_if_changed();

    std::size_t followed() const { return followed_.size(); }

private:
    void apply(const PodsFile& file);
    void say(const std::string& line);

    Fleet& fleet_;
    const std::string path_;
    const ClientOptions base_;
    std::ostream& err_;
    std::set<std::string> followed_;
    std::optional<FileStamp> stamp_;
};

}  // namespace kvevents::cli
