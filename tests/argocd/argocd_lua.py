"""Argo CD's Lua VM and its action pipeline, on a real Lua 5.1 interpreter (lupa), for the tests.

What is reproduced, from Argo CD v3.5.1 (util/lua/lua.go, oslib_safe.go; server/application/application.go):

* the interpreter: gopher-lua is Lua 5.1, so ``lupa.lua51``;
* the libraries: scripts from argocd-cm run with ``SkipOpenLibs`` (actions always, health unless
  ``useOpenLibs``): only the base and table libraries, ``package``, and an ``os`` with ``time`` and
  ``date`` alone. No ``string`` (nor the string metatable, so ``("x"):sub`` fails too), ``math``,
  ``io``, ``debug`` or ``coroutine``;
* the globals: ``obj`` (the live object, JSON ``null`` left out) and ``actionParams``;
* the results: tables encoded as gopher-json does (an empty table is ``[]``); health statuses outside
  Argo CD's set become Unknown; an action's object has its emptied maps restored (``cleanReturnedObj``),
  then Argo CD sends a JSON merge patch of live -> returned (``jsonpatch.CreateMergePatch``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import lupa.lua51 as lua51

HEALTH_STATUSES = ("Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing")

#: Builds the script's environment in a fresh runtime, then drops the string metatable, as
#: gopher-lua without OpenString has none. The harness's own Lua below uses no string method.
_SANDBOX = """
local base = {"assert", "error", "getmetatable", "ipairs", "load", "loadstring", "next", "pairs",
  "pcall", "print", "rawequal", "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring",
  "type", "unpack", "xpcall", "_VERSION"}
local env = {}
for _, name in ipairs(base) do env[name] = _G[name] end
env.table = {}
for name, fn in pairs(table) do env.table[name] = fn end
env.os = {time = os.time, date = os.date}
env.require = function(name)
  if name == "os" then return env.os end
  error("module '" .. tostring(name) .. "' not found", 2)
end
env._G = env
local setfenv, loadstring, setmetatable_any = setfenv, loadstring, debug.setmetatable
setmetatable_any("", nil)
return function(script, obj, params)
  local chunk, problem = loadstring(script, "script")
  if chunk == nil then error(problem, 0) end
  env.obj = obj
  env.actionParams = params
  setfenv(chunk, env)
  return chunk()
end
"""


class LuaFailure(Exception):
    """The script raised an error: the message Argo CD shows the user."""


def _to_lua(runtime, value: Any) -> Any:
    if isinstance(value, Mapping):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def _from_lua(value: Any) -> Any:
    """A Lua value as gopher-json encodes it: a table is an array when its keys are 1..n (and an
    empty table is ``[]``), else an object with string keys."""
    if lua51.lua_type(value) != "table":
        return value
    items = list(value.items())
    keys = [k for k, _ in items]
    if all(isinstance(k, (int, float)) for k in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
        return [_from_lua(v) for _, v in sorted(items, key=lambda kv: kv[0])]
    if not all(isinstance(k, str) for k in keys):
        raise TypeError(f"a table with keys {keys!r} cannot be encoded as JSON")
    return {k: _from_lua(v) for k, v in items}


def run(script: str, obj: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> Any:
    """Run ``script`` as Argo CD does and return its result as JSON data; LuaFailure on error."""
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=False)
    runner = runtime.execute(_SANDBOX)
    try:
        result = runner(script, _to_lua(runtime, copy.deepcopy(dict(obj))), _to_lua(runtime, dict(params or {})))
    except lua51.LuaError as e:
        raise LuaFailure(str(e)) from None
    return _from_lua(result)


def health(script: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """ExecuteHealthLua: {"status", "message"}."""
    result = run(script, obj)
    if result is None or result == []:
        return {}
    if not isinstance(result, dict):
        raise TypeError(f"expect table output from Lua script, not {type(result).__name__}")
    if result.get("status") not in HEALTH_STATUSES:
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    return {"status": result["status"], "message": result.get("message", "")}


def discovery(script: str, obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """ExecuteResourceActionDiscovery: action name -> its fields (disabled, iconClass, displayName)."""
    result = run(script, obj)
    if result == []:
        return {}
    return {name: ({} if fields == [] else dict(fields)) for name, fields in result.items()}


def _clean(new: Any, old: Any) -> Any:
    """cleanReturnedObj / cleanReturnedArray: a map Lua returned empty (so ``[]``) is a map again."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: (_clean(v, old[k]) if k in old else v) for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, dict) and not new:
        return {}
    if isinstance(new, list) and isinstance(old, list):
        return [_clean(v, old[i]) if i < len(old) else v for i, v in enumerate(new)]
    return new


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 patch from ``old`` to ``new`` (what jsonpatch.CreateMergePatch computes)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = (
                merge_patch(old[key], value) if isinstance(old[key], dict) and isinstance(value, dict) else value
            )
    return patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 applied, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def action_patch(script: str, live: Mapping[str, Any]) -> dict[str, Any]:
    """ExecuteResourceAction + patchResource: the merge patch Argo CD sends for an old-style action
    (one object returned); ``{}`` means Argo CD sends nothing."""
    result = run(script, live)
    if not isinstance(result, dict):
        raise TypeError(f"the action returned {type(result).__name__}, not an object")
    return merge_patch(dict(live), _clean(result, dict(live)))
