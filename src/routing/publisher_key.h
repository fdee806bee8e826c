#pragma once

// Maps keyed by publisher, (pod key, data-parallel rank), that can be searched with a string_view
// instead of building a std::string for each lookup.

#include <string>
#include <string_view>
#include <utility>

namespace kvevents::detail {

struct PublisherKey {
    std::string_view pod_key;
    int rank;
};

/// Orders publishers by pod key, then rank.
struct PublisherOrder {
    using is_transparent = void;
    static PublisherKey view(const std::pair<std::string, int>& k) { return {k.first, k.second}; }
    static PublisherKey view(const PublisherKey& k) { return k; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
        const PublisherKey x = view(a);
        const PublisherKey y = view(b);
        return x.pod_key < y.pod_key || (x.pod_key == y.pod_key && x.rank < y.rank);
    }
};

}  // namespace kvevents::detail
