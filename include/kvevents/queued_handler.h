#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include <kvevents/event_handler.h>

namespace kvevents {

/// An EventHandler that hands every batch and notice to a queue of its publisher (pod key and
/// rank) and returns at once; `workers` threads call `inner` from those queues. For handlers that
/// block (a database write, a remote call): on a Fleet, a blocking handler would otherwise delay
/// every publisher on its loop; here it delays only its own publisher's queue.
///
/// Calls for one publisher stay in order and never overlap; different publishers' calls run in
/// parallel on the workers. Each batch is moved into the queue, not copied, so queueing costs a
/// lock and a few pointers per batch.
///
/// A publisher's queue holds at most `max_queued_batches` batches. A batch that finds it full is
/// not queued: the handler gets, in its place in the order, one kUnrecoverableGap notice for the
/// range of batches dropped (and those batches are counted in dropped_batches()). The handler
/// should treat it as any announced loss. Notices are always queued.
///
/// The destructor delivers what is queued, then joins the workers: destroy the handler after
/// whatever feeds it (the Fleet or client) has stopped.
class QueuedEventHandler final : public EventHandler {
public:
    /// Throws std::invalid_argument if workers or max_queued_batches is 0.
    QueuedEventHandler(EventHandler& inner, std::size_t workers, std::size_t max_queued_batches);
    ~QueuedEventHandler() override;
    QueuedEventHandler(const QueuedEventHandler&) = delete;
    QueuedEventHandler& operator=(const QueuedEventHandler&) = delete;

    void on_batch(ReceivedBatch& batch) override;
    void on_notice(const StreamNotice& notice) override;

    /// Batches not queued because their publisher's queue was full.
    std::uint64_t dropped_batches() const;
    /// Calls of `inner` that threw (the queue goes on with the next item).
    std::uint64_t handler_errors() const;
    /// Batches and notices waiting in all queues.
    std::size_t queued() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kvevents
