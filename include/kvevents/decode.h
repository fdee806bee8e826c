#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <kvevents/events.h>

namespace kvevents {

/// What went wrong while decoding.
enum class DecodeErrc : std::uint8_t {
    kTruncated,           // the payload ends inside a value's header or scalar
    kLengthExceedsInput,  // a declared string/bin/array/map length runs past the payload's end
    kTrailingBytes,       // bytes after the envelope
    kInvalidByte,         // 0xc1, the byte msgpack never uses
    kWrongType,           // a value of a type the field cannot hold
    kBadEnvelope,         // root not an array/map, or missing ts/events
    kBadEvent,            // event missing its tag or required fields
    kTooDeep,             // nesting above DecodeLimits::max_depth
    kBadHash,             // a digest of length 0 or above BlockHash::kMaxDigestSize
    kOutOfRange,          // an integer that does not fit the field
    kTooLarge,            // decoding would take more memory than DecodeLimits allows
    kOutOfMemory,         // the allocator failed (std::bad_alloc) while decoding
};

const char* to_string(DecodeErrc code);

/// One decoding problem, located precisely enough to debug a capture.
struct DecodeError {
    DecodeErrc code = DecodeErrc::kTruncated;
    std::size_t offset = 0;                  // byte offset into the payload
    std::optional<std::size_t> event_index;  // nullopt: the envelope
    std::string field;                       // e.g. "block_hashes[2]", "ts"
    std::string detail;                      // human-readable specifics

    /// "event 3, field block_hashes[2], offset 41: wrong type: expected int or bin, got str"
    std::string message() const;
};

/// Which shapes a payload used, so a fleet's mix of publisher versions is visible.
struct WireShape {
    bool map_envelope = false;
    std::size_t envelope_size = 0;  // elements (array) or keys (map)
    std::size_t positional_events = 0;
    std::size_t map_events = 0;
};

struct DecodeResult {
    /// The events that decoded. When `fatal` is set this may hold a prefix of the batch only.
    EventBatch batch;
    /// Set when the envelope itself could not be read; the batch is then incomplete.
    std::optional<DecodeError> fatal;
    /// Events that were malformed and skipped; their valid siblings are in `batch.events`.
    /// Past 1024 of them the batch is given up (a kBadEvent `fatal`): it is junk, and each one
    /// costs an exception to step over.
    std::size_t malformed_events = 0;
    /// The first kMaxEventErrorsKept of those events' errors (a bound, so junk costs no memory).
    std::vector<DecodeError> event_errors;
    static constexpr std::size_t kMaxEventErrorsKept = 16;
    /// Events with a tag this version does not know (e.g. a future "BlockInactive"), skipped.
    std::size_t unknown_events = 0;
    std::vector<std::string> unknown_tags;  // distinct, at most 8 kept
    WireShape shape;

    bool ok() const { return !fatal && event_errors.empty(); }
};

/// Bounds that keep a hostile payload from costing more than a small multiple of its own size.
struct DecodeLimits {
    std::size_t max_depth = 32;  // nesting of arrays/maps
    /// The heap a decode may request: heap_per_payload_byte x payload size + heap_allowance.
    /// Every allocation is charged before it is made, and a payload that would go past the
    /// budget fails with kTooLarge. Real batches take about 2-3x (map events) to 6x
    /// (one-hash BlockRemoved events in the oldest layout); only crafted input comes near 8x.
    std::size_t heap_per_payload_byte = 8;
    std::size_t heap_allowance = 64 * 1024;
};

/// Decodes one msgpack payload (frame 3 of a live message). Pure and thread-safe; never throws.
/// Its peak heap use stays within the budget DecodeLimits sets, whatever the payload declares;
/// should the allocator still fail, the result is a kOutOfMemory error.
DecodeResult decode_batch(const void* data, std::size_t size, const DecodeLimits& limits = {});

}  // namespace kvevents
