"""Pictures and pages for people: HTML reports, contact sheets, heat-map overlays."""
