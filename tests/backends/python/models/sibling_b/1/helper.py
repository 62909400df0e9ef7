WHO = 'helper of sibling_b'
