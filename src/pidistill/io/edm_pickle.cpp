// EDM persistence objects as data: meta['class_name'] names the class, meta['state'] is the instance
// __dict__, the module tree's _parameters/_buffers/_modules give the state dict. meta['module_src'] is never
// read.
#include "pidistill/io/edm_pickle.h"

#include "pidistill/io/pickle_machine.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <set>
#include <sstream>

namespace pidistill {

namespace {

using Kind = PyValue::Kind;
using json = nlohmann::ordered_json;  // Why ordered: keys print in the pickle's order

// A walk visits at most this many values: a pickle of shared sub-objects cannot make it exponential.
constexpr size_t kMaxVisits = 10'000'000;

struct Walk {
  std::string where;
  size_t visits = 0;
  void enter(int depth, const std::string& at) {
    if (depth > kMaxPickleDepth)
      fail(where, "objects nested deeper than " + std::to_string(kMaxPickleDepth) + " levels at '" +
                      at.substr(0, 200) + "' (damaged or hostile file)");
    if (++visits > kMaxVisits) fail(where, "more than 10 million values to visit (damaged or hostile file)");
  }
};

std::string tensor_text(const at::Tensor& t) {
  std::ostringstream o;
  o << "tensor " << c10::toString(t.scalar_type()) << " [";
  for (int64_t d = 0; d < t.dim(); ++d) o << (d ? ", " : "") << t.size(d);
  o << "]";
  return o.str();
}

std::string key_text(const PyValue* k) {
  if (k->is(Kind::Str)) return k->s;
  if (k->is(Kind::Int) && k->s.empty()) return std::to_string(k->i);
  return std::string("<") + kind_name(k->kind) + ">";
}

json to_json(const PyValue* v, Walk& walk, int depth, const std::string& at) {
  walk.enter(depth, at);
  switch (v->kind) {
    case Kind::None:
      return nullptr;
    case Kind::Bool:
      return v->b;
    case Kind::Int:
      return v->s.empty() ? json(v->i) : json("int of " + std::to_string(v->s.size()) + " bytes");
    case Kind::Float:
      return v->f;
    case Kind::Str:
      return v->s;
    case Kind::Bytes:
      return "bytes of length " + std::to_string(v->s.size());
    case Kind::Tuple:
    case Kind::List:
    case Kind::Set: {
      json a = json::array();
      for (const PyValue* x : v->items) a.push_back(to_json(x, walk, depth + 1, at + "[]"));
      return a;
    }
    case Kind::Dict: {
      json o = json::object();
      for (size_t i = 0; i + 1 < v->items.size(); i += 2) {
        const std::string k = key_text(v->items[i]);
        o[k] = to_json(v->items[i + 1], walk, depth + 1, at + "." + k);
      }
      return o;
    }
    case Kind::Global:
      return "global " + v->s;
    case Kind::Object: {
      json o = json::object();
      o["__class__"] = v->s;
      if (v->state && v->state->is(Kind::Dict)) {
        for (size_t i = 0; i + 1 < v->state->items.size(); i += 2) {
          const std::string k = key_text(v->state->items[i]);
          if (k.empty() || k[0] == '_' || k == "training") continue;  // torch.nn bookkeeping
          o[k] = to_json(v->state->items[i + 1], walk, depth + 1, at + "." + k);
        }
      }
      return o;
    }
    case Kind::Storage:
      return "storage " + v->s;
    case Kind::Tensor:
      return tensor_text(v->tensor);
  }
  return nullptr;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string describe(const PyValue* v) {
  switch (v->kind) {
    case Kind::Object:
      return v->s + (v->persistent ? " (persistent EDM object)" : " (object)");
    case Kind::Dict:
      return "dict of " + std::to_string(v->dict_size()) + " entries";
    case Kind::List:
    case Kind::Tuple:
      return std::string(kind_name(v->kind)) + " of " + std::to_string(v->items.size()) + " items";
    case Kind::Tensor:
      return tensor_text(v->tensor);
    default:
      return kind_name(v->kind);
  }
}

const PyValue* attr(const PyValue* obj, const std::string& name) {
  return obj->state && obj->state->is(Kind::Dict) ? obj->state->get(name) : nullptr;
}

// PyTorch's state_dict() order: a module's own parameters, its persistent buffers, then each child module.
void module_state(const PyValue* module, const std::string& prefix, int depth, Walk& walk,
                  NamedTensors& out) {
  walk.enter(depth, prefix);
  const std::string name =
      prefix.empty() ? "the network" : "module '" + prefix.substr(0, prefix.size() - 1) + "'";
  if (!module->state || !module->state->is(Kind::Dict))
    fail(walk.where, name + " (" + module->s + ") has no state");
  std::set<std::string> non_persistent;
  if (const PyValue* set = attr(module, "_non_persistent_buffers_set"))
    for (const PyValue* x : set->items)
      if (x->is(Kind::Str)) non_persistent.insert(x->s);
  for (const char* field : {"_parameters", "_buffers"}) {
    const PyValue* d = attr(module, field);
    if (!d) continue;
    if (!d->is(Kind::Dict)) fail(walk.where, name + " " + field + " is not a dict");
    for (size_t i = 0; i + 1 < d->items.size(); i += 2) {
      const std::string key = key_text(d->items[i]);
      const PyValue* t = d->items[i + 1];
      if (t->is(Kind::None) || (field[1] == 'b' && non_persistent.count(key))) continue;
      if (!t->is(Kind::Tensor))
        fail(walk.where, name + " " + field + " '" + key + "' is a " + kind_name(t->kind));
      out.emplace_back(prefix + key, t->tensor);
    }
  }
  const PyValue* children = attr(module, "_modules");
  if (!children) return;
  if (!children->is(Kind::Dict)) fail(walk.where, name + " _modules is not a dict");
  for (size_t i = 0; i + 1 < children->items.size(); i += 2) {
    const std::string key = key_text(children->items[i]);
    const PyValue* child = children->items[i + 1];
    if (child->is(Kind::None)) continue;
    if (!child->is(Kind::Object))
      fail(walk.where, name + " submodule '" + key + "' is a " + kind_name(child->kind));
    module_state(child, prefix + key + ".", depth + 1, walk, out);
  }
}

}  // namespace

std::string pickle_to_json(const PyValue* value, const std::string& where) {
  Walk walk{where};
  return dump(to_json(value, walk, 0, ""));
}

std::optional<EdmPickle> edm_pickle_from(const TorchPickle& file) {
  const PyValue* root = file.root;
  EdmPickle out;
  out.path = file.path;
  out.format = file.format;
  const PyValue* net = nullptr;
  if (root->is(Kind::Object) && root->persistent) {
    net = root;
  } else if (root->is(Kind::Dict)) {
    for (size_t i = 0; i + 1 < root->items.size(); i += 2)
      out.top_level.emplace_back(key_text(root->items[i]), describe(root->items[i + 1]));
    for (const char* key : {"ema", "net"}) {
      const PyValue* v = root->get(key);
      if (v && v->is(Kind::Object) && v->persistent) {
        net = v;
        out.network_key = key;
        break;
      }
    }
  }
  if (!net) return std::nullopt;
  const std::string where =
      file.path + ": " + (out.network_key.empty() ? "network" : "'" + out.network_key + "'");
  out.precond_class = net->s;
  if (net->s == "EDMPrecond")
    out.precond = "edm";
  else if (net->s == "VPPrecond")
    out.precond = "vp";
  else if (net->s == "VEPrecond")
    out.precond = "ve";
  else if (net->s == "iDDPMPrecond")
    fail(where,
         "iDDPMPrecond is not supported (its rounded sigma schedule and learned-variance outputs are not "
         "implemented); EDMPrecond, VPPrecond and VEPrecond are");
  else
    fail(where,
         "is a persistent '" + net->s + "', not an EDM preconditioner (EDMPrecond, VPPrecond, VEPrecond)");

  const PyValue* args = attr(net, "_init_args");
  if (args && !(args->is(Kind::Tuple) && args->items.empty()))
    fail(where, net->s + " was constructed with positional arguments; only keyword arguments are read");
  const PyValue* kwargs = attr(net, "_init_kwargs");
  if (!kwargs || !kwargs->is(Kind::Dict))
    fail(where, net->s + " has no _init_kwargs dict (not an EDM network?)");
  out.init_kwargs = pickle_to_json(kwargs, where);
  for (const char* c : {"sigma_min", "sigma_max", "sigma_data", "beta_d", "beta_min", "M", "epsilon_t"}) {
    const PyValue* v = attr(net, c);
    if (v && v->is(Kind::Float))
      out.constants[c] = v->f;
    else if (v && v->is(Kind::Int) && v->s.empty())
      out.constants[c] = static_cast<double>(v->i);
    else if (v)
      fail(where, net->s + "." + c + " is a " + kind_name(v->kind) + ", not a number");
  }
  if (const PyValue* fp16 = attr(net, "use_fp16")) {
    if (!fp16->is(Kind::Bool)) fail(where, net->s + ".use_fp16 is not a bool");
    out.use_fp16 = fp16->b;
  }
  const PyValue* modules = attr(net, "_modules");
  const PyValue* model = modules && modules->is(Kind::Dict) ? modules->get("model") : nullptr;
  if (!model || !model->is(Kind::Object)) fail(where, net->s + " has no 'model' submodule");
  out.model_class = model->s;
  Walk walk{where};
  module_state(net, "", 0, walk, out.state);

  if (root->is(Kind::Dict)) {
    if (const PyValue* loss = root->get("loss_fn")) {
      if (loss->is(Kind::Object)) {
        out.loss_class = loss->s;
        json j = json::parse(pickle_to_json(loss, file.path + ": 'loss_fn'"));
        j.erase("__class__");
        out.loss_kwargs = dump(j);
      }
    }
    if (const PyValue* d = root->get("dataset_kwargs"))
      out.dataset_kwargs = pickle_to_json(d, file.path + ": 'dataset_kwargs'");
  }
  return out;
}

EdmPickle read_edm_pickle(const std::string& path) {
  auto edm = edm_pickle_from(read_torch_pickle(path));
  if (!edm)
    fail(path,
         "holds no EDM network (no persistent EDMPrecond/VPPrecond/VEPrecond at the top or under 'ema' or "
         "'net')");
  return *edm;
}

}  // namespace pidistill
