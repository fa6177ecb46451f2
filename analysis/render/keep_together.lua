-- Page layout of the fallback's PDF: a table of at most MAX_ROWS (15) rows is kept whole on one page, with its
-- caption (typst would otherwise split it anywhere, leaving a caption or one or two rows alone at a page's
-- end); a longer table may break across pages, and its header row repeats. Other formats are untouched.
local MAX_ROWS = 15

local function rows(tbl)
  local n = #tbl.head.rows
  for _, body in ipairs(tbl.bodies) do n = n + #body.body + #body.head end
  return n + #tbl.foot.rows
end

function Table(tbl)
  if FORMAT ~= "typst" or rows(tbl) > MAX_ROWS then return nil end
  return {pandoc.RawBlock("typst", "#block(breakable: false, width: 100%)["), tbl, pandoc.RawBlock("typst", "]")}
end
