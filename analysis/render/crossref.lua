-- Quarto's cross-references for plain pandoc (the fallback renderer): `@fig-x`, `@tbl-x` and `@sec-x`
-- become "Figure 2", "Table 3", "Section 4", linked to their target, as Quarto writes them.
--   typst: figures, tables and headings carry their labels (<fig-x>), so a reference is typst's own `@fig-x`,
--          numbered by typst as its captions are. A reference to an unnumbered heading would not compile:
--          it becomes a plain link named by the heading's text instead.
--   html:  this filter numbers them: every figure and every table in document order (as typst counts
--          them), numbered headings as --number-sections numbers them, and puts "Figure 2:" / "Table 3:"
--          before the caption of each labelled one (fig-..., tbl-...), as Quarto does.
-- It runs after conditional.lua, so hidden content takes no number. An unknown id reads "?@id", as in Quarto.

local KIND = {fig = "Figure", tbl = "Table", sec = "Section"}
local numbers = {}   -- id -> number text
local titles = {}    -- id of an unnumbered heading -> its text

local function prefix_caption(el, kind, n)
  local long = el.caption.long
  if #long > 0 and long[1].t == "Plain" or #long > 0 and long[1].t == "Para" then
    long[1].content:insert(1, pandoc.Str(kind .. " " .. n .. ":"))
    long[1].content:insert(2, pandoc.Space())
  end
  return el
end

local function number_all(doc)
  local fig, tbl, levels = 0, 0, {}
  local html = FORMAT:match("html") ~= nil
  doc = doc:walk({
    traverse = "topdown",
    Figure = function(el)
      fig = fig + 1
      if el.identifier ~= "" then numbers[el.identifier] = tostring(fig) end
      if html and el.identifier:match("^fig%-") then return prefix_caption(el, "Figure", fig) end
    end,
    Table = function(el)
      tbl = tbl + 1
      if el.identifier ~= "" then numbers[el.identifier] = tostring(tbl) end
      if html and el.identifier:match("^tbl%-") and #el.caption.long > 0 then return prefix_caption(el, "Table", tbl) end
    end,
    Header = function(el)
      if el.classes:includes("unnumbered") then
        if el.identifier ~= "" then titles[el.identifier] = pandoc.utils.stringify(el.content) end
        return nil
      end
      levels[el.level] = (levels[el.level] or 0) + 1
      for l = el.level + 1, 6 do levels[l] = nil end
      local parts = {}
      for l = 1, el.level do parts[#parts + 1] = tostring(levels[l] or 0) end
      if el.identifier ~= "" then numbers[el.identifier] = table.concat(parts, ".") end
    end,
  })
  return doc
end

local function reference(id)
  local prefix = id:match("^(%a+)%-")
  local kind = prefix and KIND[prefix]
  if not kind then return nil end
  if titles[id] then return pandoc.Link(titles[id], "#" .. id) end
  if not numbers[id] then return pandoc.Str("?@" .. id) end
  if FORMAT == "typst" then return pandoc.RawInline("typst", "@" .. id) end
  return pandoc.Link(kind .. " " .. numbers[id], "#" .. id)
end

function Pandoc(doc)
  doc = number_all(doc)
  return doc:walk({
    Cite = function(el)
      local out = pandoc.Inlines({})
      for i, c in ipairs(el.citations) do
        local r = reference(c.id)
        if not r then return nil end   -- a real citation: left to pandoc
        if i > 1 then out:insert(pandoc.Str(", ")) end
        out:insert(r)
      end
      return out
    end,
  })
end
