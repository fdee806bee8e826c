#include "pods_file.h"

#include <cmath>
#include <fstream>
#include <set>
#include <stdexcept>

#include <sys/stat.h>

#include "json_object_reader.h"

namespace kvevents::cli {
namespace {

const std::string& string_field(const JsonObject& o, const std::string& key) {
    static const std::string empty;
    const auto it = o.find(key);
    if (it == o.end() || std::holds_alternative<std::nullptr_t>(it->second))
        return empty;
    if (const auto* s = std::get_if<std::string>(&it->second))
        return *s;
    throw std::invalid_argument("\"" + key + "\" must be a string");
}

}  // namespace

PodEntry parse_pod_line(std::string_view text) {
    const JsonObject o = read_flat_json_object(text);
    static const std::set<std::string> known = {"pod",    "pod_ip",  "endpoint",
                                                "replay", "dp_size", "model"};
    for (const auto& [key, value] : o) {
        if (known.count(key) == 0)
            throw std::invalid_argument(
                "unknown key \"" + key +
                "\" (known: pod, pod_ip, endpoint, replay, dp_size, model)");
    }
    PodEntry e;
    e.pod = string_field(o, "pod");
    e.pod_ip = string_field(o, "pod_ip");
    e.endpoint = string_field(o, "endpoint");
    e.replay = string_field(o, "replay");
    e.model = string_field(o, "model");
    if (e.pod.empty())
        throw std::invalid_argument("\"pod\" is missing or empty");
    if (e.pod_ip.empty() == e.endpoint.empty())
        throw std::invalid_argument("give exactly one of \"pod_ip\" and \"endpoint\"");
    if (!e.replay.empty() && e.endpoint.empty())
        throw std::invalid_argument(
            "\"replay\" goes with \"endpoint\" (with \"pod_ip\" it is "
            "port 5558 of that address)");
    if (const auto it = o.find("dp_size"); it != o.end()) {
        const auto* n = std::get_if<double>(&it->second);
        if (n == nullptr || *n != std::floor(*n) || *n < 1 || *n > 1024)
            throw std::invalid_argument("\"dp_size\" must be a whole number from 1 to 1024");
        e.dp_size = static_cast<int>(*n);
    }
    return e;
}

PodsFile read_pods_file(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw std::runtime_error("cannot read the pods file '" + path + "'");
    PodsFile out;
    std::set<std::string> seen;
    std::string text;
    for (std::size_t line = 1; std::getline(in, text); ++line) {
        if (text.find_first_not_of(" \t\r") == std::string::npos)
            continue;
        try {
            PodEntry e = parse_pod_line(text);
            e.line = line;
            if (!seen.insert(e.pod).second)
                throw std::invalid_argument("pod \"" + e.pod + "\" is already listed above");
            out.pods.push_back(std::move(e));
        } catch (const std::invalid_argument& err) {
            out.errors.push_back(path + ":" + std::to_string(line) + ": " + err.what());
        }
    }
    if (in.bad())
        throw std::runtime_error("reading the pods file '" + path + "' failed");
    return out;
}

std::optional<FileStamp> stamp_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return std::nullopt;
    FileStamp s;
    s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    s.size = static_cast<long long>(st.st_size);
    s.inode = static_cast<unsigned long long>(st.st_ino);
    return s;
}

}  // namespace kvevents::cli
