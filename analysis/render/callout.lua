-- Quarto's callouts for plain pandoc's typst (the fallback renderer): a div of class callout-note,
-- callout-important or callout-warning becomes a framed, tinted block in 9 pt, as Quarto draws one (a little
-- smaller than the text, so that page 1 holds the verdict, the substitutions and the contents). HTML styles
-- them in templates/report/report.css; Quarto draws its own in both formats.
local COLOURS = {["callout-important"] = "#c44e52", ["callout-warning"] = "#c44e52", ["callout-note"] = "#4c72b0"}

function Div(el)
  if FORMAT ~= "typst" then return nil end
  for _, class in ipairs(el.classes) do
    local colour = COLOURS[class]
    if colour then
      local open = '#block(width: 100%, inset: (x: 8pt, y: 6pt), radius: 2pt, stroke: (left: 2.5pt + rgb("'
        .. colour .. '")), fill: rgb("' .. colour .. '").lighten(92%), breakable: true)[#set text(size: 9pt)'
      local blocks = pandoc.Blocks({pandoc.RawBlock("typst", open)})
      blocks:extend(el.content)
      blocks:insert(pandoc.RawBlock("typst", "]"))
      return blocks
    end
  end
end
