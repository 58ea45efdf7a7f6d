/**
 * The Lua every limiter script starts with: a window's ring slot holds "<bucket index>:<count>"
 * (redis-limiter.ts describes the layout), read in one place for the check, reserve and reconcile
 * scripts. No imports here: the scripts' modules import each other.
 */
export const ringSlotLua = `
local function parseSlot(value)
  local sep = string.find(value, ':', 1, true)
  return tonumber(string.sub(value, 1, sep - 1)), tonumber(string.sub(value, sep + 1))
end
`;
