"""The geometry of an HSF form, no text rules and no models.

What lives here: page registration and the top-section crop (:mod:`.registration`), the
handwriting boxes on a crop (:mod:`.boxes`), the two handwritten lines cut for a recognizer
(:mod:`.lines`) and the ink checks that tell a usable crop from a blank or dark one
(:mod:`.ink`). Used by curation, the engines, the field reader, Donut and digitize.

Floor 1. May import: floor 0 — and needs none of it (numpy, PIL, OpenCV only).
"""
