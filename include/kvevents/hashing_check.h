#pragma once

// Tells a gateway, within seconds, whether its BlockHasher computes the hashes the engines send.
// Part of kvevents::routing.
//
// A BlockStored carries each block's token ids, the parent's hash and the block's extra keys, so
// the hash of each stored block can be computed again from the event and compared with the one
// the engine sent. A gateway configured with another seed, algorithm or block size than its
// engines otherwise never finds a prefix, silently.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <kvevents/block_hasher.h>
#include <kvevents/event_handler.h>

namespace kvevents {

/// An EventHandler adapter: checks each stored block, then passes every batch and notice on to
/// `next` unchanged, adding kHashesMatch and kHashMismatch notices when a publisher's verdict
/// changes. May be called for different publishers from several threads at once (a Fleet's
/// loops).
///
/// A block can be checked when its chain starts in the event (parent nil), when the parent was
/// sent as a whole digest, or when the parent is one of the blocks this check computed earlier
/// for the same publisher. Blocks are counted as unverifiable when that is not so, when token
/// ids are not plain integers, when the event's token count is not block size times hashes,
/// or when the event has no extra_keys (vLLM before early 2026) and names a LoRA adapter.
/// Without extra_keys, other blocks are checked as having none: on such engines, salted and
/// multimodal requests show up as mismatches.
class HashingCheck final : public EventHandler {
public:
    struct Options {
        /// Digests remembered per publisher, to check chains whose parent came in an earlier
        /// event as the 64-bit form. The oldest is forgotten first.
        std::size_t remembered_digests = 8192;
    };

    struct PublisherResult {
        std::string pod_key;
        int data_parallel_rank = 0;
        std::uint64_t matched = 0;       // blocks whose hash was computed and equals the sent one
        std::uint64_t mismatched = 0;    // blocks whose computed hash differs
        std::uint64_t unverifiable = 0;  // blocks that could not be computed (see above)
        std::string last_mismatch;       // the latest mismatch, described
        std::string last_unverifiable;   // why the latest unverifiable block was
        /// Some blocks matched and none did not.
        bool matching() const { return matched > 0 && mismatched == 0; }
    };

    HashingCheck(BlockHasher hasher, EventHandler& next);
    HashingCheck(BlockHasher hasher, EventHandler& next, Options options);
    ~HashingCheck() override;
    HashingCheck(const HashingCheck&) = delete;
    HashingCheck& operator=(const HashingCheck&) = delete;

    void on_batch(ReceivedBatch& batch) override;
    void on_notice(const StreamNotice& notice) override;

    const BlockHasher& hasher() const;
    /// Every publisher seen, ordered by pod key and rank. From any thread.
    std::vector<PublisherResult> results() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace kvevents
