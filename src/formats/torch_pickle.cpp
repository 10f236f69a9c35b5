#include "formats/torch_pickle.h"

#include <zip.h>

#include <array>
#include <cstring>
#include <deque>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/utf8.h"

namespace lorahub {
namespace {

// ---- values ------------------------------------------------------------------------------

// The globals a state dict pickle may name. Everything else is refused at the GLOBAL opcode.
enum class Global : uint8_t { OrderedDict, RebuildTensorV2, RebuildParameter, StorageType };

// Kept small (64 bytes): a hostile pickle makes one per opcode byte, so the size of a Node is the
// amplification a bomb gets. Strings are views (into the pickle, or into the machine's own
// names); storages and tensors live beside the nodes, which hold their index.
struct Node {
  enum class Kind : uint8_t {
    None,
    Bool,
    Int,
    Float,
    String,
    Tuple,
    List,
    Dict,
    Global,
    Storage,
    Tensor
  };
  Kind kind = Kind::None;
  Global global{};           // Global
  DType storage_dtype{};     // Global of StorageType
  uint32_t slot = 0;         // Storage, Tensor: index into the machine's storages / tensors
  int64_t int_value = 0;     // Int, Bool
  double float_value = 0;    // Float
  std::string_view text;     // String; Global: "module.name"
  std::vector<Node*> items;  // Tuple, List; Dict: key, value, key, value, ...
};

static_assert(sizeof(Node) <= 64, "a Node's size is what a pickle bomb multiplies");

const char* kind_name(Node::Kind k) {
  static constexpr std::array<const char*, 11> names{"None",   "bool",    "int",   "float",
                                                     "str",    "tuple",   "list",  "dict",
                                                     "global", "storage", "tensor"};
  return names[static_cast<size_t>(k)];
}

struct StorageClass {
  const char* name;
  DType dtype;
};
constexpr std::array<StorageClass, 10> kStorageClasses{{{"FloatStorage", DType::F32},
                                                        {"HalfStorage", DType::F16},
                                                        {"BFloat16Storage", DType::BF16},
                                                        {"DoubleStorage", DType::F64},
                                                        {"LongStorage", DType::I64},
                                                        {"IntStorage", DType::I32},
                                                        {"ShortStorage", DType::I16},
                                                        {"CharStorage", DType::I8},
                                                        {"ByteStorage", DType::U8},
                                                        {"BoolStorage", DType::Bool}}};

// ---- the machine ---------------------------------------------------------------------------

// What the machine may allocate, relative to the pickle's size. The pickle of a real state dict
// (measured on PEFT and transformers .bin files) makes one value per 7-8 pickle bytes and needs
// 10-13 bytes of machine memory per pickle byte (nodes, memo entries, storages, tensors);
// one-byte opcodes that each make a value ("]]]]...") amplify most. So: at most one value per
// four pickle bytes and 24 bytes per pickle byte, above fixed allowances for small pickles. A
// 3 MiB stored bomb now stops below 60 MiB (it reached 247 MiB with 180-byte nodes and 48x).
constexpr size_t kPickleBaseBudget = size_t{8} << 20;
constexpr size_t kPickleBudgetPerByte = 24;
constexpr size_t kPickleBaseObjects = size_t{1} << 16;
constexpr size_t kPickleBytesPerObject = 4;
constexpr size_t kMemoEntryCost = 48;  // an unordered_map node (32 with malloc's) and its bucket

// Nodes live in an arena owned by the machine and point at each other with raw pointers: a
// hostile pickle can build cycles (a list appended to itself) or very deep nesting, and neither
// then leaks nor recurses on destruction. Only tensors (and their storages) leave the machine.
class PickleMachine {
 public:
  PickleMachine(std::span<const std::byte> bytes, const std::string& source,
                const TorchStorageLoader& load)
      : bytes_(bytes),
        source_(source),
        load_storage_(load),
        budget_(kPickleBaseBudget + kPickleBudgetPerByte * bytes.size()),
        max_objects_(kPickleBaseObjects + bytes.size() / kPickleBytesPerObject) {}

  StateDict run();

 private:
  // reading
  void need(size_t n);
  uint8_t u8();
  uint64_t uint_le(size_t n);
  std::string_view take(size_t n);
  std::string_view line();

  // stack
  void charge(size_t bytes);
  Node* make(Node::Kind kind);
  void push(Node* n) {
    grow(stack_, 1);
    stack_.push_back(n);
  }
  // Charges what appending `more` pointers to `v` adds to its capacity (libstdc++ grows a vector
  // to size + max(size, more)).
  void grow(std::vector<Node*>& v, size_t more) {
    if (v.size() + more > v.capacity())
      charge((v.size() + std::max(v.size(), more) - v.capacity()) * sizeof(Node*));
  }
  Node* pop();
  Node* top();
  std::vector<Node*> pop_to_mark();
  Node* expect(Node* n, Node::Kind kind, const char* what);

  // opcodes
  bool step();  // false at STOP
  void push_int(int64_t v);
  void push_string(std::string_view s);
  void push_tuple(std::vector<Node*> items);
  void push_global(std::string_view module, std::string_view name);
  void memo_put(uint64_t index) {
    // A pickler memoizes each value it makes at most once: more entries than values is a bomb.
    if (memo_.size() >= arena_.size() && !memo_.contains(index))
      error(
          fmt::format("{} memo entries for {} values: a state dict never has more (a pickle "
                      "bomb?)",
                      memo_.size() + 1, arena_.size()));
    charge(kMemoEntryCost);
    memo_[index] = top();
  }
  void memo_get(uint64_t index);
  void append_items(Node* list, const std::vector<Node*>& items);
  void set_items(Node* dict, const std::vector<Node*>& items);
  void reduce();
  void persistent_load();
  void build();

  // torch
  Tensor rebuild_tensor(const std::vector<Node*>& args);
  StateDict to_state_dict(Node* root);

  [[noreturn]] void error(const std::string& what) const {
    fail("{}: pickle byte {}: {}", source_, op_pos_, what);
  }

  std::span<const std::byte> bytes_;
  const std::string& source_;
  const TorchStorageLoader& load_storage_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;  // where the current opcode started, for messages
  std::deque<Node> arena_;
  std::vector<Node*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Node*> memo_;
  std::unordered_map<std::string, TorchStorage> storages_;  // by key: tensors share storages
  std::deque<TorchStorage> storage_values_;                 // Node::slot of Storage nodes
  std::deque<Tensor> tensors_;                              // Node::slot of Tensor nodes
  std::deque<std::string> names_;                           // Global nodes' text
  size_t budget_;       // bytes the machine may use (see kPickleBaseBudget)
  size_t used_ = 0;     // bytes charged so far
  size_t max_objects_;  // values the machine may make (see kPickleBaseObjects)
};

void PickleMachine::charge(size_t bytes) {
  used_ += bytes;
  if (used_ > budget_)
    error(fmt::format("unpickling needs more than {} MiB for a {}-byte pickle (a pickle bomb?)",
                      budget_ >> 20, bytes_.size()));
}

void PickleMachine::need(size_t n) {
  if (n > bytes_.size() - pos_) error("pickle is truncated");
}

uint8_t PickleMachine::u8() {
  need(1);
  return static_cast<uint8_t>(bytes_[pos_++]);
}

uint64_t PickleMachine::uint_le(size_t n) {
  need(n);
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(bytes_[pos_ + i]) << (8 * i);
  pos_ += n;
  return v;
}

std::string_view PickleMachine::take(size_t n) {
  need(n);
  std::string_view s(reinterpret_cast<const char*>(bytes_.data()) + pos_, n);
  pos_ += n;
  return s;
}

std::string_view PickleMachine::line() {
  const auto* begin = reinterpret_cast<const char*>(bytes_.data()) + pos_;
  const auto* end = static_cast<const char*>(std::memchr(begin, '\n', bytes_.size() - pos_));
  if (!end) error("pickle is truncated inside a text line");
  pos_ += static_cast<size_t>(end - begin) + 1;
  return {begin, static_cast<size_t>(end - begin)};
}

Node* PickleMachine::make(Node::Kind kind) {
  if (arena_.size() >= max_objects_)
    error(
        fmt::format("a {}-byte pickle makes more than {} values: a state dict never does (a "
                    "pickle bomb?)",
                    bytes_.size(), max_objects_));
  charge(sizeof(Node));
  arena_.emplace_back();
  arena_.back().kind = kind;
  return &arena_.back();
}

Node* PickleMachine::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
    error("stack underflow");
  Node* n = stack_.back();
  stack_.pop_back();
  return n;
}

Node* PickleMachine::top() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
    error("stack underflow");
  return stack_.back();
}

std::vector<Node*> PickleMachine::pop_to_mark() {
  if (marks_.empty()) error("no MARK on the stack");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<Node*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
  stack_.resize(mark);
  return items;
}

Node* PickleMachine::expect(Node* n, Node::Kind kind, const char* what) {
  if (n->kind != kind)
    error(fmt::format("{} must be a {}, got a {}", what, kind_name(kind), kind_name(n->kind)));
  return n;
}

void PickleMachine::push_int(int64_t v) {
  Node* n = make(Node::Kind::Int);
  n->int_value = v;
  push(n);
}

void PickleMachine::push_string(std::string_view s) {
  // Python's unpickler decodes str opcodes as UTF-8 and fails on anything else.
  if (!is_valid_utf8(s)) error("a str is not valid UTF-8");
  Node* n = make(Node::Kind::String);
  n->text = s;  // a view into the pickle: nothing to charge
  push(n);
}

void PickleMachine::push_tuple(std::vector<Node*> items) {
  Node* n = make(Node::Kind::Tuple);
  charge(items.capacity() * sizeof(Node*));
  n->items = std::move(items);
  push(n);
}

void PickleMachine::push_global(std::string_view module, std::string_view name) {
  Node* n = make(Node::Kind::Global);
  names_.push_back(fmt::format("{}.{}", module, name));
  charge(sizeof(std::string) + names_.back().capacity());
  n->text = names_.back();
  if (n->text == "collections.OrderedDict") {
    n->global = Global::OrderedDict;
  } else if (n->text == "torch._utils._rebuild_tensor_v2") {
    n->global = Global::RebuildTensorV2;
  } else if (n->text == "torch._utils._rebuild_parameter") {
    n->global = Global::RebuildParameter;
  } else {
    const StorageClass* storage = nullptr;
    for (const auto& c : kStorageClasses)
      if (module == "torch" && name == c.name) storage = &c;
    if (!storage && module == "torch" && name.ends_with("Storage"))
      error(fmt::format("unsupported storage type '{}'", n->text));
    if (!storage)
      error(fmt::format("refusing global '{}': a state dict never needs it (nothing was run)",
                        n->text));
    n->global = Global::StorageType;
    n->storage_dtype = storage->dtype;
  }
  push(n);
}

void PickleMachine::memo_get(uint64_t index) {
  const auto it = memo_.find(index);
  if (it == memo_.end()) error(fmt::format("memo entry {} was never stored", index));
  push(it->second);
}

void PickleMachine::append_items(Node* list, const std::vector<Node*>& items) {
  expect(list, Node::Kind::List, "APPEND target");
  grow(list->items, items.size());
  list->items.insert(list->items.end(), items.begin(), items.end());
}

void PickleMachine::set_items(Node* dict, const std::vector<Node*>& items) {
  expect(dict, Node::Kind::Dict, "SETITEM target");
  if (items.size() % 2) error("SETITEMS needs key/value pairs");
  grow(dict->items, items.size());
  dict->items.insert(dict->items.end(), items.begin(), items.end());
}

// Protocol 2-5 opcodes, plus the few protocol 0/1 ones that older writers emit for containers.
bool PickleMachine::step() {
  op_pos_ = pos_;
  const uint8_t op = u8();
  switch (op) {
    case 0x80:
      u8();
      break;  // PROTO
    case 0x95:
      uint_le(8);
      break;  // FRAME: a length hint only
    case '.':
      return false;  // STOP
    case '(':
      marks_.push_back(stack_.size());
      break;  // MARK
    case 'N':
      push(make(Node::Kind::None));
      break;
    case 0x88:    // NEWTRUE
    case 0x89: {  // NEWFALSE
      Node* n = make(Node::Kind::Bool);
      n->int_value = op == 0x88;
      push(n);
      break;
    }
    case 'K':
      push_int(u8());
      break;  // BININT1
    case 'M':
      push_int(static_cast<int64_t>(uint_le(2)));
      break;  // BININT2
    case 'J':
      push_int(static_cast<int32_t>(uint_le(4)));
      break;      // BININT
    case 0x8a: {  // LONG1
      const size_t n = u8();
      if (n > 8) error("integer wider than 64 bits");
      uint64_t v = uint_le(n);
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign
      push_int(static_cast<int64_t>(v));
      break;
    }
    case 'G': {  // BINFLOAT
      const uint64_t be = uint_le(8);
      const uint64_t bits = __builtin_bswap64(be);  // big-endian on the wire
      Node* n = make(Node::Kind::Float);
      std::memcpy(&n->float_value, &bits, 8);
      push(n);
      break;
    }
    case 0x8c:
      push_string(take(u8()));
      break;  // SHORT_BINUNICODE
    case 'X':
      push_string(take(uint_le(4)));
      break;  // BINUNICODE
    case 0x8d:
      push_string(take(uint_le(8)));
      break;  // BINUNICODE8
    case ')':
      push_tuple({});
      break;    // EMPTY_TUPLE
    case 0x85:  // TUPLE1..3
    case 0x86:
    case 0x87: {
      std::vector<Node*> items(op - 0x84);
      for (size_t i = items.size(); i-- > 0;) items[i] = pop();
      push_tuple(std::move(items));
      break;
    }
    case 't':
      push_tuple(pop_to_mark());
      break;  // TUPLE
    case ']':
      push(make(Node::Kind::List));
      break;     // EMPTY_LIST
    case 'l': {  // LIST
      auto items = pop_to_mark();
      push(make(Node::Kind::List));
      append_items(top(), items);
      break;
    }
    case 'a': {  // APPEND
      Node* item = pop();
      append_items(top(), {item});
      break;
    }
    case 'e': {  // APPENDS
      auto items = pop_to_mark();
      append_items(top(), items);
      break;
    }
    case '}':
      push(make(Node::Kind::Dict));
      break;     // EMPTY_DICT
    case 'd': {  // DICT
      auto items = pop_to_mark();
      push(make(Node::Kind::Dict));
      set_items(top(), items);
      break;
    }
    case 's': {  // SETITEM
      Node* value = pop();
      Node* key = pop();
      set_items(top(), {key, value});
      break;
    }
    case 'u': {  // SETITEMS
      auto items = pop_to_mark();
      set_items(top(), items);
      break;
    }
    case 'q':
      memo_put(u8());
      break;  // BINPUT
    case 'r':
      memo_put(uint_le(4));
      break;  // LONG_BINPUT
    case 0x94:
      memo_put(memo_.size());
      break;  // MEMOIZE
    case 'h':
      memo_get(u8());
      break;  // BINGET
    case 'j':
      memo_get(uint_le(4));
      break;  // LONG_BINGET
    case '0':
      pop();
      break;     // POP
    case 'c': {  // GLOBAL "module\nname\n"
      const std::string module(line());
      push_global(module, line());
      break;
    }
    case 0x93: {  // STACK_GLOBAL
      Node* name = expect(pop(), Node::Kind::String, "STACK_GLOBAL name");
      Node* module = expect(pop(), Node::Kind::String, "STACK_GLOBAL module");
      push_global(module->text, name->text);
      break;
    }
    case 'R':
      reduce();
      break;
    case 'Q':
      persistent_load();
      break;  // BINPERSID
    case 'b':
      build();
      break;
    default:
      error(fmt::format("unsupported pickle opcode 0x{:02x} (not used by state dicts)", op));
  }
  return true;
}

// Calls one of the allowed globals. Each is implemented here; no Python is ever involved.
void PickleMachine::reduce() {
  Node* args = expect(pop(), Node::Kind::Tuple, "REDUCE arguments");
  Node* callable = expect(pop(), Node::Kind::Global, "REDUCE callable");
  switch (callable->global) {
    case Global::OrderedDict:
      if (!args->items.empty()) error("OrderedDict(...) with arguments is not supported");
      push(make(Node::Kind::Dict));
      return;
    case Global::RebuildTensorV2: {
      Node* n = make(Node::Kind::Tensor);
      tensors_.push_back(rebuild_tensor(args->items));
      charge(sizeof(Tensor) + tensors_.back().shape.capacity() * sizeof(int64_t));
      n->slot = static_cast<uint32_t>(tensors_.size() - 1);
      push(n);
      return;
    }
    case Global::RebuildParameter:  // (data, requires_grad, backward_hooks): the data is all
      if (args->items.empty()) error("_rebuild_parameter needs arguments");
      push(expect(args->items[0], Node::Kind::Tensor, "_rebuild_parameter data"));
      return;
    case Global::StorageType:
      error(fmt::format("'{}' cannot be called", callable->text));
  }
}

// ('storage', torch.<T>Storage, key, location, numel) -> the storage's bytes.
void PickleMachine::persistent_load() {
  Node* pid = expect(pop(), Node::Kind::Tuple, "persistent id");
  const auto& f = pid->items;
  if (f.size() != 5 || f[0]->kind != Node::Kind::String || f[0]->text != "storage")
    error("persistent id must be ('storage', type, key, location, numel)");
  Node* type = expect(f[1], Node::Kind::Global, "storage type");
  if (type->global != Global::StorageType)
    error(fmt::format("'{}' is not a storage type", type->text));
  const std::string key(expect(f[2], Node::Kind::String, "storage key")->text);
  const int64_t numel = expect(f[4], Node::Kind::Int, "storage size")->int_value;
  if (numel < 0) error("negative storage size");

  auto it = storages_.find(key);
  if (it == storages_.end())
    it = storages_.emplace(key, load_storage_(key, type->storage_dtype, numel)).first;
  if (it->second.dtype != type->storage_dtype)
    error(fmt::format("storage '{}' is used with two element types", key));
  Node* n = make(Node::Kind::Storage);
  storage_values_.push_back(it->second);
  charge(sizeof(TorchStorage));
  n->slot = static_cast<uint32_t>(storage_values_.size() - 1);
  push(n);
}

// Object state: only OrderedDict's (state_dict()._metadata, the per-module versions), which
// holds nothing a loader needs, so it is dropped.
void PickleMachine::build() {
  pop();
  expect(top(), Node::Kind::Dict, "BUILD target");
}

// ---- tensors -------------------------------------------------------------------------------

int64_t checked_nonneg(Node* n, const char* what, const std::string& source) {
  if (n->kind != Node::Kind::Int || n->int_value < 0)
    fail("{}: tensor {} must be a non-negative int", source, what);
  return n->int_value;
}

// Copies a strided view into a new contiguous tensor (the source index walks like an odometer).
void gather_strided(const std::byte* base, const Shape& shape, const std::vector<int64_t>& stride,
                    size_t elem, std::byte* out) {
  const size_t rank = shape.size();
  std::vector<int64_t> index(rank, 0);
  const int64_t numel = shape_numel(shape);
  for (int64_t i = 0; i < numel; ++i) {
    int64_t offset = 0;
    for (size_t d = 0; d < rank; ++d) offset += index[d] * stride[d];
    std::memcpy(out + static_cast<size_t>(i) * elem, base + static_cast<size_t>(offset) * elem,
                elem);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[,
// metadata]): a contiguous view of the storage, or a copy when the strides are not contiguous.
Tensor PickleMachine::rebuild_tensor(const std::vector<Node*>& args) {
  if (args.size() < 4) error("_rebuild_tensor_v2 needs at least 4 arguments");
  const TorchStorage& storage =
      storage_values_[expect(args[0], Node::Kind::Storage, "tensor storage")->slot];
  const auto& sizes = expect(args[2], Node::Kind::Tuple, "tensor size")->items;
  const auto& strides = expect(args[3], Node::Kind::Tuple, "tensor stride")->items;
  if (sizes.size() != strides.size()) error("tensor size and stride differ in length");
  const uint64_t offset = checked_nonneg(args[1], "storage offset", source_);

  Shape shape;
  std::vector<int64_t> stride;
  for (size_t d = 0; d < sizes.size(); ++d) {
    shape.push_back(checked_nonneg(sizes[d], "size", source_));
    stride.push_back(checked_nonneg(strides[d], "stride", source_));
  }
  const size_t elem = dtype_size(storage.dtype);
  const uint64_t storage_numel = storage.bytes->size() / elem;
  // Highest element index touched, with overflow checks; numel is bounded by it (or is zero).
  uint64_t last = offset;
  bool empty = false;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) empty = true;
    uint64_t span;
    if (shape[d] > 0 && (__builtin_mul_overflow(static_cast<uint64_t>(shape[d] - 1),
                                                static_cast<uint64_t>(stride[d]), &span) ||
                         __builtin_add_overflow(last, span, &last)))
      error(fmt::format("tensor of size {} overflows", shape_str(shape)));
  }
  if (empty) return Tensor::owned(storage.dtype, shape);
  if (last >= storage_numel)
    error(fmt::format("tensor of size {} at offset {} reads past its storage of {} elements",
                      shape_str(shape), offset, storage_numel));

  const std::byte* base = storage.bytes->data() + offset * elem;
  int64_t expected = 1;  // contiguous row-major strides; size-1 dims may have any stride
  bool contiguous = true;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1 && stride[d] != expected) contiguous = false;
    expected *= shape[d];
  }
  if (contiguous) {
    Tensor t;
    t.dtype = storage.dtype;
    t.shape = std::move(shape);
    t.data = base;
    t.owner = storage.bytes;
    return t;
  }
  Tensor copy = Tensor::owned(storage.dtype, shape);
  gather_strided(base, shape, stride, elem, copy.mutable_data());
  return copy;
}

StateDict PickleMachine::to_state_dict(Node* root) {
  if (root->kind != Node::Kind::Dict)
    fail("{}: the pickle holds a {}, not a state dict", source_, kind_name(root->kind));
  StateDict dict(source_);
  for (size_t i = 0; i < root->items.size(); i += 2) {
    const Node* key = root->items[i];
    const Node* value = root->items[i + 1];
    if (key->kind != Node::Kind::String)
      fail("{}: state dict key is a {}, not a str", source_, kind_name(key->kind));
    if (value->kind != Node::Kind::Tensor)
      fail("{}: state dict entry '{}' is a {}, not a tensor", source_, key->text,
           kind_name(value->kind));
    dict.add(std::string(key->text), tensors_[value->slot]);
  }
  return dict;
}

StateDict PickleMachine::run() {
  while (step()) {
  }
  if (stack_.size() != 1 || !marks_.empty())
    fail("{}: pickle ended with {} values on the stack, expected 1", source_, stack_.size());
  return to_state_dict(stack_.back());
}

// ---- zip ------------------------------------------------------------------------------------

// An archive may expand to at most this multiple of its own size (plus kZipSlack) in total.
// torch.save stores entries uncompressed (ratio 1) and float weights hardly compress, so 32x
// leaves room for re-zipped checkpoints while a deflate bomb (up to ~1032x per entry) stops
// before its bytes are allocated.
constexpr uint64_t kMaxZipExpansion = 32;
constexpr uint64_t kZipSlack = uint64_t{1} << 20;
constexpr uint64_t kMaxDeflateRatio = 1032;  // zlib's limit on how far deflate can expand

// Read-only libzip archive over bytes in memory.
class ZipArchive {
 public:
  ZipArchive(std::span<const std::byte> bytes, const std::string& source) : source_(source) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
    if (src) zip_ = zip_open_from_source(src, ZIP_RDONLY, &err);
    if (!zip_) {
      const std::string why = zip_error_strerror(&err);
      if (src) zip_source_free(src);
      zip_error_fini(&err);
      fail("{}: not a readable zip archive: {}", source, why);
    }
    zip_error_fini(&err);
    archive_size_ = bytes.size();
    remaining_ = archive_size_ * kMaxZipExpansion + kZipSlack;
  }
  ~ZipArchive() { zip_discard(zip_); }
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    const zip_int64_t n = zip_get_num_entries(zip_, 0);
    for (zip_int64_t i = 0; i < n; ++i)
      if (const char* name = zip_get_name(zip_, static_cast<zip_uint64_t>(i), 0))
        out.emplace_back(name);
    return out;
  }

  bool contains(const std::string& name) const {
    return zip_name_locate(zip_, name.c_str(), 0) >= 0;
  }

  // The whole entry; at least `min_size` bytes.
  std::shared_ptr<std::vector<std::byte>> read(const std::string& name, uint64_t min_size = 0) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat(zip_, name.c_str(), 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
      fail("{}: zip archive has no entry '{}'", source_, name);
    check(st.size >= min_size, "{}: zip entry '{}' holds {} bytes, expected at least {}", source_,
          name, st.size, min_size);
    reserve(name, st);
    auto out = std::make_shared<std::vector<std::byte>>(st.size);
    zip_file_t* f = zip_fopen(zip_, name.c_str(), 0);
    check(f != nullptr, "{}: cannot open zip entry '{}': {}", source_, name, zip_strerror(zip_));
    const zip_int64_t got = zip_fread(f, out->data(), st.size);
    zip_fclose(f);
    check(got >= 0 && static_cast<zip_uint64_t>(got) == st.size,
          "{}: zip entry '{}' is truncated or corrupt", source_, name);
    return out;
  }

 private:
  // Refuses, before anything is allocated, an entry whose size cannot come from its compressed
  // bytes or that would take the archive past what its size can legitimately hold.
  void reserve(const std::string& name, const zip_stat_t& st) {
    check(st.valid & ZIP_STAT_COMP_SIZE, "{}: zip entry '{}' has no compressed size", source_,
          name);
    const uint64_t limit = st.comp_size * kMaxDeflateRatio + 64;
    check(st.size <= limit, "{}: zip entry '{}' claims {} bytes from {} compressed: impossible",
          source_, name, st.size, st.comp_size);
    check(st.size <= remaining_,
          "{}: zip entry '{}' would expand the {}-byte archive past {}x its size (a zip bomb?)",
          source_, name, archive_size_, kMaxZipExpansion);
    remaining_ -= st.size;
  }

  std::string source_;
  zip_t* zip_ = nullptr;
  size_t archive_size_ = 0;
  uint64_t remaining_ = 0;  // bytes the entries not yet read may still expand to
};

// "<prefix>/data.pkl" -> "<prefix>/"; torch names the prefix after the file it saved to.
std::string find_pickle_prefix(const ZipArchive& zip, const std::string& source) {
  for (const auto& name : zip.names()) {
    constexpr std::string_view kPickle = "data.pkl";
    if (name.size() < kPickle.size() ||
        name.compare(name.size() - kPickle.size(), kPickle.size(), kPickle) != 0)
      continue;
    const std::string prefix = name.substr(0, name.size() - kPickle.size());
    if (prefix.empty() || (prefix.back() == '/' && prefix.find('/') == prefix.size() - 1))
      return prefix;
  }
  fail("{}: zip archive without data.pkl: not a PyTorch checkpoint", source);
}

}  // namespace

StateDict parse_torch_pickle(std::span<const std::byte> pickle, const std::string& source,
                             const TorchStorageLoader& load_storage) {
  return PickleMachine(pickle, source, load_storage).run();
}

StateDict load_torch_zip(std::span<const std::byte> archive, const std::string& source) {
  ZipArchive zip(archive, source);
  const std::string prefix = find_pickle_prefix(zip, source);
  if (zip.contains(prefix + "byteorder")) {
    const auto order = zip.read(prefix + "byteorder");
    const std::string_view text(reinterpret_cast<const char*>(order->data()), order->size());
    check(text == "little", "{}: byte order '{}' is not supported", source, text);
  }
  const auto pickle = zip.read(prefix + "data.pkl");
  const auto load = [&](const std::string& key, DType dtype, uint64_t numel) {
    uint64_t bytes;
    check(!__builtin_mul_overflow(numel, dtype_size(dtype), &bytes),
          "{}: storage '{}' size overflows", source, key);
    return TorchStorage{dtype, zip.read(prefix + "data/" + key, bytes)};
  };
  return parse_torch_pickle(*pickle, source, load);
}

StateDict load_torch_bin(const std::string& path) {
  const auto file = MappedFile::open(path);
  return load_torch_zip(file->bytes(), path);
}

}  // namespace lorahub
