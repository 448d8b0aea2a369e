#include "model/safetensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/json_file.h"
#include "fdpp/status.h"

namespace fdpp {

namespace {

using json = nlohmann::json;

std::string show(const json& v) { return show_json(v); }

std::optional<uint64_t> as_uint(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

struct Parsed {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Parsed parse_entry(const std::string& file, const std::string& name, const json& entry) {
  auto fail = [&](ErrorCode code, const std::string& what) {
    return Error(code, fmt::format("{}: tensor '{}': {}", file, name, what));
  };
  if (!entry.is_object()) {
    throw fail(ErrorCode::kParse, fmt::format("expected an object with dtype, shape and data_offsets, found {}",
                                              show(entry)));
  }
  Parsed p;
  p.name = name;

  const auto dt = entry.find("dtype");
  if (dt == entry.end()) throw fail(ErrorCode::kParse, "missing field 'dtype'");
  if (!dt->is_string()) throw fail(ErrorCode::kParse, fmt::format("field 'dtype': expected a string, found {}", show(*dt)));
  const std::string dtype_str = dt->get<std::string>();
  const auto dtype = parse_dtype(dtype_str);
  if (!dtype || *dtype == DType::kI32) {
    throw fail(ErrorCode::kUnsupported,
               fmt::format("dtype {} is not supported (supported: F32, F16, BF16)", dtype_str));
  }
  p.dtype = *dtype;

  const auto sh = entry.find("shape");
  if (sh == entry.end()) throw fail(ErrorCode::kParse, "missing field 'shape'");
  if (!sh->is_array()) {
    throw fail(ErrorCode::kParse, fmt::format("field 'shape': expected an array of non-negative integers, found {}",
                                              show(*sh)));
  }
  for (const json& d : *sh) {
    const auto v = as_uint(d);
    if (!v || *v > static_cast<uint64_t>(INT64_MAX)) {
      throw fail(ErrorCode::kParse, fmt::format("field 'shape': expected an array of non-negative integers, found {}",
                                                show(*sh)));
    }
    p.shape.push_back(static_cast<int64_t>(*v));
  }
  if (p.shape.size() > static_cast<size_t>(TensorView::kMaxRank)) {
    throw fail(ErrorCode::kUnsupported, fmt::format("shape {} has rank {}, more than the supported {}",
                                                    shape_text(p.shape), p.shape.size(), TensorView::kMaxRank));
  }

  const auto off = entry.find("data_offsets");
  if (off == entry.end()) throw fail(ErrorCode::kParse, "missing field 'data_offsets'");
  std::optional<uint64_t> b, e;
  if (off->is_array() && off->size() == 2) {
    b = as_uint((*off)[0]);
    e = as_uint((*off)[1]);
  }
  if (!b || !e) {
    throw fail(ErrorCode::kParse, fmt::format("field 'data_offsets': expected [begin, end] (two non-negative "
                                              "integers), found {}", show(*off)));
  }
  if (*b > *e) {
    throw fail(ErrorCode::kParse, fmt::format("data_offsets [{}, {}]: begin is past end", *b, *e));
  }
  p.begin = *b;
  p.end = *e;

  // Byte size implied by dtype x shape, with overflow detection.
  unsigned __int128 bytes = dtype_size(p.dtype);
  bool overflow = false;
  for (int64_t d : p.shape) {
    bytes *= static_cast<uint64_t>(d);
    if (bytes > static_cast<unsigned __int128>(UINT64_MAX)) overflow = true, bytes = UINT64_MAX;
  }
  if (overflow || static_cast<uint64_t>(bytes) != p.end - p.begin) {
    throw fail(ErrorCode::kParse,
               fmt::format("dtype {} with shape {} needs {} bytes, but data_offsets [{}, {}] span {} bytes",
                           dtype_str, shape_text(p.shape),
                           overflow ? std::string("more than 2^64") : std::to_string(static_cast<uint64_t>(bytes)),
                           p.begin, p.end, p.end - p.begin));
  }
  return p;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile st;
  st.file_ = MappedFile::open(path);
  const std::string file = path.string();
  const size_t size = st.file_.size();
  const uint8_t* base = st.file_.data();

  if (size < 8) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: file is {} bytes, too short for a safetensors file (the header length alone "
                            "takes 8 bytes)", file, size));
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | base[i];  // little-endian u64
  if (n > size - 8) {
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("{}: header length {} runs past the end of the file (header would end at byte {}, "
                            "file is {} bytes); the file is truncated or not a safetensors file",
                            file, n, n > UINT64_MAX - 8 ? UINT64_MAX : n + 8, size));
  }
  st.header_size_ = static_cast<size_t>(n);

  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(base) + 8, reinterpret_cast<const char*>(base) + 8 + n);
  } catch (const json::parse_error& e) {
    throw Error(ErrorCode::kParse, fmt::format("{}: header ({} bytes) is not valid JSON: error at byte {} of the "
                                               "header: {}", file, n, e.byte, e.what()));
  }
  if (!header.is_object()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: header must be a JSON object mapping tensor names to entries, "
                                               "found {}", file, header.type_name()));
  }

  std::vector<Parsed> parsed;
  parsed.reserve(header.size());
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    parsed.push_back(parse_entry(file, name, entry));
  }

  // Every tensor must lie inside the data section; a header describing more data than the file
  // holds means the file was cut short.
  const size_t data_size = st.data_size();
  const Parsed* last = nullptr;
  for (const Parsed& p : parsed) {
    if (last == nullptr || p.end > last->end) last = &p;
  }
  if (last != nullptr && last->end > data_size) {
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("{}: file is truncated: the header describes {} bytes of tensor data, found {} "
                            "(tensor '{}' has data_offsets [{}, {}], past the end of the data section)",
                            file, last->end, data_size, last->name, last->begin, last->end));
  }

  // No overlaps: sort by begin and compare neighbours (empty tensors occupy no bytes).
  std::sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Parsed* prev = nullptr;
  for (const Parsed& p : parsed) {
    if (p.begin == p.end) continue;
    if (prev != nullptr && p.begin < prev->end) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: tensors '{}' (data_offsets [{}, {}]) and '{}' (data_offsets [{}, {}]) overlap",
                              file, prev->name, prev->begin, prev->end, p.name, p.begin, p.end));
    }
    prev = &p;
  }

  const uint8_t* data = base + st.data_offset();
  st.tensors_.reserve(parsed.size());
  for (const Parsed& p : parsed) {
    SafetensorsTensor t;
    t.name = p.name;
    t.data_begin = static_cast<size_t>(p.begin);
    t.data_end = static_cast<size_t>(p.end);
    const size_t nbytes = t.data_end - t.data_begin;
    const uint8_t* src = data + t.data_begin;
    void* ptr = const_cast<uint8_t*>(src);
    if (nbytes > 0 && reinterpret_cast<uintptr_t>(src) % dtype_size(p.dtype) != 0) {
      auto copy = std::make_unique<uint64_t[]>((nbytes + 7) / 8);
      std::memcpy(copy.get(), src, nbytes);
      ptr = copy.get();
      st.aligned_copies_.push_back(std::move(copy));
    }
    TensorView& v = t.view;
    v.data = ptr;
    v.dtype = p.dtype;
    v.device = Device::kCpu;
    v.rank = static_cast<int>(p.shape.size());
    int64_t stride = 1;
    for (int d = v.rank - 1; d >= 0; --d) {
      v.shape[static_cast<size_t>(d)] = p.shape[static_cast<size_t>(d)];
      v.stride[static_cast<size_t>(d)] = stride;
      stride *= p.shape[static_cast<size_t>(d)];
    }
    st.by_name_.emplace(t.name, st.tensors_.size());
    st.tensors_.push_back(std::move(t));
  }
  return st;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace fdpp
