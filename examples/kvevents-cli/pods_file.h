#pragma once

// The publishers a `subscribe --pods-file` follows: one JSON object per line, e.g.
//   {"pod": "pod-a", "pod_ip": "10.0.0.7", "dp_size": 2, "model": "m"}
//   {"pod": "pod-b", "endpoint": "tcp://10.0.0.8:5557", "replay": "tcp://10.0.0.8:5558"}
// Blank lines are skipped.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvevents::cli {

struct PodEntry {
    std::size_t line = 0;
    std::string pod;
    std::string pod_ip;
    std::string endpoint;
    std::string replay;
    std::string model;
    int dp_size = 1;
};

/// One line; throws std::invalid_argument naming the problem (not the line: the caller knows it).
PodEntry parse_pod_line(std::string_view text);

struct PodsFile {
    std::vector<PodEntry> pods;
    std::vector<std::string> errors;  // "FILE:LINE: what is wrong"; those lines are left out
};

/// Throws std::runtime_error when the file cannot be read. A pod named twice is an error on the
/// later line.
PodsFile read_pods_file(const std::string& path);

/// What tells a changed file from the one read before (modification time, size, inode).
struct FileStamp {
    long long mtime_ns = 0;
    long long size = -1;
    unsigned long long inode = 0;
    bool operator==(const FileStamp& other) const {
        return mtime_ns == other.mtime_ns && size == other.size && inode == other.inode;
    }
    bool operator!=(const FileStamp& other) const { return !(*this == other); }
};
std::optional<FileStamp> stamp_of(const std::string& path);

}  // namespace kvevents::cli
