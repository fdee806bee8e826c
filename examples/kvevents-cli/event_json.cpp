#include "event_json.h"

#include <variant>

namespace kvevents::cli {
namespace {

void write_hashes(JsonWriter& out, const std::vector<BlockHash>& hashes, HashStyle hash_style) {
    out.begin_array();
    for (const BlockHash& h : hashes) write_block_hash(out, h, hash_style);
    out.end_array();
}

template <class T>
void write_optional(JsonWriter& out, const std::optional<T>& v) {
    if (!v) {
        out.null();
    } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
        out.string(*v);
    } else if constexpr (std::is_same_v<T, Value>) {
        write_value_json(out, *v);
    } else {
        out.number(static_cast<std::int64_t>(*v));
    }
}

// A named code as the publisher sent it: null when unset.
template <class Code>
std::optional<std::string_view> sent_name(Code code, std::string_view name) {
    if (code == Code::kUnset)
        return std::nullopt;
    return name;
}

void write_token_ids(JsonWriter& out, const BlockStored& ev) {
    out.begin_array();
    switch (ev.token_id_form) {
        case TokenIdForm::kPlain:
            for (const std::int64_t t : ev.token_ids) out.number(t);
            break;
        case TokenIdForm::kBigram:
            for (std::size_t i = 0; i < ev.token_ids.size(); ++i) {
                out.begin_array();
                out.number(ev.token_ids[i]);
                out.number(ev.extras.or_empty().token_id_pair_seconds[i]);
                out.end_array();
            }
            break;
        case TokenIdForm::kString:
            for (const std::string& t : ev.extras.or_empty().token_id_strings) out.string(t);
            break;
    }
    out.end_array();
}

// Collects the "extra" object lazily so it is left out when nothing is set.
class ExtraWriter {
public:
    explicit ExtraWriter(JsonWriter& out) : out_(out) {}
    ~ExtraWriter() {
        if (open_)
            out_.end_object();
    }

    template <class T>
    void field(const char* name, const std::optional<T>& v) {
        if (!v)
            return;
        key(name);
        write_optional(out_, v);
    }
    void extra_keys(const std::optional<std::vector<ExtraKeyEntry>>& keys) {
        if (!keys)
            return;
        key("extra_keys");
        out_.begin_array();
        for (const ExtraKeyEntry& entry : *keys) {
            if (!entry) {
                out_.null();
                continue;
            }
            out_.begin_array();
            for (const Value& v : *entry) write_value_json(out_, v);
            out_.end_array();
        }
        out_.end_array();
    }
    void others(const std::vector<NamedValue>& fields) {
        for (const NamedValue& nv : fields) {
            key(nv.name.c_str());
            write_value_json(out_, nv.value);
        }
    }

private:
    void key(const char* name) {
        if (!open_) {
            out_.key("extra");
            out_.begin_object();
            open_ = true;
        }
        out_.key(name);
    }

    JsonWriter& out_;
    bool open_ = false;
};

}  // namespace

void write_block_hash(JsonWriter& out, const BlockHash& hash, HashStyle hash_style) {
    if (hash.is_integer() && hash_style == HashStyle::kNumber) {
        out.raw(hash.to_string());
    } else {
        out.string(hash.to_string());
    }
}

void write_value_json(JsonWriter& out, const Value& value) {
    switch (value.kind) {
        case Value::Kind::kNil:
            out.null();
            break;
        case Value::Kind::kBool:
            out.boolean(value.boolean);
            break;
        case Value::Kind::kInt:
            out.number(value.int_value);
            break;
        case Value::Kind::kUint:
            out.number(value.uint_value);
            break;
        case Value::Kind::kFloat:
            out.number(value.float_value);
            break;
        case Value::Kind::kString:
            out.string(value.text);
            break;
        case Value::Kind::kBytes:
            out.hex_string(value.text);
            break;
        case Value::Kind::kArray:
            out.begin_array();
            for (const Value& item : value.items) write_value_json(out, item);
            out.end_array();
            break;
        case Value::Kind::kMap: {
            // JSON keys must be strings: string keys are used as they are, others as their JSON.
            out.begin_object();
            for (std::size_t i = 0; i + 1 < value.items.size(); i += 2) {
                const Value& k = value.items[i];
                if (k.kind == Value::Kind::kString) {
                    out.key(k.text);
                } else {
                    JsonWriter key_text;
                    write_value_json(key_text, k);
                    out.key(key_text.str());
                }
                write_value_json(out, value.items[i + 1]);
            }
            out.end_object();
            break;
        }
    }
}

void write_event_json(JsonWriter& out,
                      const BatchOrigin& origin,
                      const EventBatch& batch,
                      std::size_t index,
                      HashStyle hash_style) {
    const Event& event = batch.events[index];
    out.begin_object();
    if (origin.pod) {
        out.key("pod");
        out.string(*origin.pod);
    }
    out.key("seq");
    if (origin.seq) {
        out.number(*origin.seq);
    } else {
        out.null();
    }
    out.key("ts");
    out.number(batch.ts);
    out.key("dp_rank");
    write_optional(out, batch.data_parallel_rank);
    out.key("idx");
    out.number(static_cast<std::uint64_t>(index));
    out.key("type");
    out.string(event_type_name(event));
    std::visit(Overloaded{
                   [&](const BlockStored& ev) {
                       out.key("block_hashes");
                       write_hashes(out, ev.block_hashes, hash_style);
                       out.key("parent_block_hash");
                       if (ev.parent_block_hash) {
                           write_block_hash(out, *ev.parent_block_hash, hash_style);
                       } else {
                           out.null();
                       }
                       out.key("token_ids");
                       write_token_ids(out, ev);
                       out.key("block_size");
                       write_optional(out, ev.block_size);
                       out.key("lora_id");
                       write_optional(out, ev.lora_id);
                       out.key("medium");
                       write_optional(out, sent_name(ev.medium, ev.medium_name()));
                       const BlockStoredExtras& x = ev.extras.or_empty();
                       ExtraWriter extra(out);
                       extra.field("lora_name", x.lora_name);
                       extra.extra_keys(x.extra_keys);
                       extra.field("group_idx", ev.group_idx);
                       extra.field("kv_cache_spec_kind",
                                   sent_name(ev.kv_cache_spec_kind, ev.kv_cache_spec_kind_name()));
                       extra.field("kv_cache_spec_sliding_window", x.kv_cache_spec_sliding_window);
                       extra.field("locality", x.locality);
                       extra.field("ownership", x.ownership);
                       extra.field("session_id", x.session_id);
                       extra.field("cache_salt", x.cache_salt);
                       extra.others(x.other_fields);
                   },
                   [&](const BlockRemoved& ev) {
                       out.key("block_hashes");
                       write_hashes(out, ev.block_hashes, hash_style);
                       out.key("medium");
                       write_optional(out, sent_name(ev.medium, ev.medium_name()));
                       const BlockRemovedExtras& x = ev.extras.or_empty();
                       ExtraWriter extra(out);
                       extra.field("group_idx", ev.group_idx);
                       extra.field("locality", x.locality);
                       extra.field("ownership", x.ownership);
                       extra.others(x.other_fields);
                   },
                   [&](const AllBlocksCleared&) {},
               },
               event);
    out.end_object();
}

}  // namespace kvevents::cli
