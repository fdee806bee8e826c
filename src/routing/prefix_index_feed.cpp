#include <vector>

#include <kvevents/prefix_index_feed.h>

namespace kvevents {

namespace {

const std::vector<std::uint64_t>& routing_keys(const std::vector<BlockHash>& hashes) {
    thread_local std::vector<std::uint64_t> keys;
    keys.clear();
    for (const BlockHash& h : hashes) keys.push_back(h.to_u64());
    return keys;
}

}  // namespace

void PrefixIndexFeed::on_batch(ReceivedBatch& batch) {
    const std::string& pod = batch.pod_key;
    const int rank = batch.data_parallel_rank;
    for (const Event& event : batch.batch.events) {
        std::visit(Overloaded{
                       [&](const BlockStored& e) {
                           index_.store(pod, rank, routing_keys(e.block_hashes),
                                        index_.tier_for(e.medium, e.medium_name()));
                       },
                       [&](const BlockRemoved& e) {
                           index_.remove(pod, rank, routing_keys(e.block_hashes),
                                         index_.tier_for(e.medium, e.medium_name()));
                       },
                       [&](const AllBlocksCleared&) { index_.clear(pod, rank); },
                   },
                   event);
    }
    if (next_ != nullptr)
        next_->on_batch(batch);
}

void PrefixIndexFeed::on_notice(const StreamNotice& notice) {
    switch (notice.kind) {
        case StreamNotice::Kind::kPublisherRestarted:
        case StreamNotice::Kind::kContinuityLost:
            index_.clear(notice.pod_key, notice.data_parallel_rank);
            break;
        case StreamNotice::Kind::kUnrecoverableGap:
        case StreamNotice::Kind::kDecodeError:
            index_.mark_stale(notice.pod_key, notice.data_parallel_rank);
            break;
        default:
            break;
    }
    if (next_ != nullptr)
        next_->on_notice(notice);
}

}  // namespace kvevents
