WHO = 'shared_util of sibling_a'
