#pragma once

// Keeps a PrefixIndex current from the events: an EventHandler to give a ZmqClient, a Fleet or
// a QueuedEventHandler. Part of kvevents::routing.

#include <kvevents/event_handler.h>
#include <kvevents/prefix_index.h>

namespace kvevents {

/// Applies each batch and notice to the index, then passes it on to `next`, if given:
/// - BlockStored adds its blocks for the publisher (pod key and rank) on its medium's tier;
/// - BlockRemoved removes them from that tier;
/// - AllBlocksCleared, a restart and lost continuity clear the publisher;
/// - an unrecoverable gap or an undecodable batch marks the publisher stale until it is cleared.
/// Calls may come from several threads for different publishers (a Fleet's loops).
class PrefixIndexFeed final : public EventHandler {
public:
    explicit PrefixIndexFeed(PrefixIndex& index, EventHandler* next = nullptr)
        : index_(index), next_(next) {}

    void on_batch(ReceivedBatch& batch) override;
    void on_notice(const StreamNotice& notice) override;

private:
    PrefixIndex& index_;
    EventHandler* next_;
};

}  // namespace kvevents
